//! The pure side of payments: what counts as paid, what is still owed, debts.
//!
//! The payment provider integration lives elsewhere; here a payment is just a
//! record with a status. Only `succeeded` records move money: pending and
//! failed ones are ignored, so a declined card never opens a gate.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::core::error::CoreError;
use crate::core::money::{Currency, Money};
use crate::core::plate::Plate;
use crate::core::types::{PaymentId, SessionId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Card,
    Mobile,
    Cash,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Succeeded,
    Failed,
}

/// Money in (`charge`) or back out (`refund`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    Charge,
    Refund,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: PaymentId,
    pub kind: PaymentKind,
    pub method: PaymentMethod,
    pub status: PaymentStatus,
    /// Always non-negative; `kind` gives the direction.
    pub amount: Money,
    pub at: DateTime<Utc>,
}

/// Succeeded charges minus succeeded refunds, in `currency`.
///
/// Errors on a negative amount or a payment in another currency: both mean
/// corrupted data, and guessing would either over- or under-charge.
pub fn net_paid(payments: &[Payment], currency: Currency) -> Result<Money, CoreError> {
    payments
        .iter()
        .filter(|p| p.status == PaymentStatus::Succeeded)
        .try_fold(Money::zero(currency), |acc, p| {
            if p.amount.amount_minor < 0 {
                return Err(CoreError::NegativeAmount(p.amount.amount_minor));
            }
            match p.kind {
                PaymentKind::Charge => acc.checked_add(p.amount),
                PaymentKind::Refund => acc.checked_sub(p.amount),
            }
        })
}

/// What is still owed on `fee` after `payments`; never negative (an
/// overpayment is a refund matter, not a negative debt).
pub fn amount_owed(fee: Money, payments: &[Payment]) -> Result<Money, CoreError> {
    Ok(fee
        .checked_sub(net_paid(payments, fee.currency)?)?
        .clamp_non_negative())
}

/// When the most recent succeeded charge happened; starts the exit grace.
pub fn last_charge_at(payments: &[Payment]) -> Option<DateTime<Utc>> {
    payments
        .iter()
        .filter(|p| p.status == PaymentStatus::Succeeded && p.kind == PaymentKind::Charge)
        .map(|p| p.at)
        .max()
}

/// Money a plate owes after leaving without paying (pay-later sites).
///
/// Debts are keyed by plate so the next entry or an online lookup can
/// collect them; payments against a debt are ordinary `Payment` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Debt {
    pub plate: Plate,
    pub session: Option<SessionId>,
    pub amount: Money,
    pub incurred_at: DateTime<Utc>,
}

impl Debt {
    /// A debt for what was owed at exit, or `None` if nothing was.
    pub fn for_unpaid_exit(
        plate: Plate,
        session: Option<SessionId>,
        owed: Money,
        at: DateTime<Utc>,
    ) -> Option<Debt> {
        owed.is_positive().then_some(Debt {
            plate,
            session,
            amount: owed,
            incurred_at: at,
        })
    }

    /// What remains of the debt after payments made against it.
    pub fn outstanding(&self, payments: &[Payment]) -> Result<Money, CoreError> {
        amount_owed(self.amount, payments)
    }

    pub fn is_settled(&self, payments: &[Payment]) -> Result<bool, CoreError> {
        Ok(self.outstanding(payments)?.is_zero())
    }
}

/// Why a payment request cannot be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum PaymentRejection {
    /// Zero or negative amount.
    NonPositive,
    /// Nothing is owed right now.
    NothingDue,
    /// More than what is owed; overpayments are refused rather than kept.
    ExceedsDue { due: Money },
    /// The amount is in another currency than the site's.
    WrongCurrency,
}

/// Whether a payment of `amount` may be taken when `due` is owed. Partial
/// payments are allowed (a kiosk may take cash in steps); overpayments are
/// not, so no refund is ever needed for a mistyped amount.
pub fn check_payment_amount(amount: Money, due: Money) -> Result<(), PaymentRejection> {
    if amount.currency != due.currency {
        return Err(PaymentRejection::WrongCurrency);
    }
    if amount.amount_minor <= 0 {
        return Err(PaymentRejection::NonPositive);
    }
    if due.amount_minor <= 0 {
        return Err(PaymentRejection::NothingDue);
    }
    if amount.amount_minor > due.amount_minor {
        return Err(PaymentRejection::ExceedsDue { due });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    pub(crate) fn payment(
        kind: PaymentKind,
        status: PaymentStatus,
        amount: i64,
        at: DateTime<Utc>,
    ) -> Payment {
        Payment {
            id: PaymentId::new("pay"),
            kind,
            method: PaymentMethod::Card,
            status,
            amount: Money::new(amount, Currency::EUR),
            at,
        }
    }

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, h, 0, 0).unwrap()
    }

    #[test]
    fn only_succeeded_payments_count() {
        use PaymentKind::*;
        use PaymentStatus::*;
        let payments = [
            payment(Charge, Succeeded, 500, at(1)),
            payment(Charge, Failed, 1000, at(2)),
            payment(Charge, Pending, 1000, at(3)),
            payment(Refund, Succeeded, 100, at(4)),
        ];
        assert_eq!(
            net_paid(&payments, Currency::EUR).unwrap().amount_minor,
            400
        );
        let fee = Money::new(600, Currency::EUR);
        assert_eq!(amount_owed(fee, &payments).unwrap().amount_minor, 200);
        assert_eq!(last_charge_at(&payments), Some(at(1)));
        let small = Money::new(300, Currency::EUR);
        assert!(amount_owed(small, &payments).unwrap().is_zero());
    }

    #[test]
    fn bad_records_are_errors() {
        use PaymentKind::*;
        use PaymentStatus::*;
        let neg = [payment(Charge, Succeeded, -5, at(1))];
        assert!(net_paid(&neg, Currency::EUR).is_err());
        let mut ron = payment(Charge, Succeeded, 5, at(1));
        ron.amount.currency = Currency::RON;
        assert!(net_paid(&[ron], Currency::EUR).is_err());
    }

    #[test]
    fn debts() {
        let plate = Plate::parse("B1").unwrap();
        let zero = Money::zero(Currency::EUR);
        assert!(Debt::for_unpaid_exit(plate.clone(), None, zero, at(1)).is_none());
        let debt =
            Debt::for_unpaid_exit(plate, None, Money::new(700, Currency::EUR), at(1)).unwrap();
        let paid = [payment(
            PaymentKind::Charge,
            PaymentStatus::Succeeded,
            300,
            at(5),
        )];
        assert_eq!(debt.outstanding(&paid).unwrap().amount_minor, 400);
        assert!(!debt.is_settled(&paid).unwrap());
    }

    #[test]
    fn payment_amount_rules() {
        let m = |a| Money::new(a, Currency::EUR);
        assert_eq!(check_payment_amount(m(500), m(500)), Ok(()));
        assert_eq!(check_payment_amount(m(200), m(500)), Ok(()));
        assert_eq!(
            check_payment_amount(m(0), m(500)),
            Err(PaymentRejection::NonPositive)
        );
        assert_eq!(
            check_payment_amount(m(100), m(0)),
            Err(PaymentRejection::NothingDue)
        );
        assert_eq!(
            check_payment_amount(m(600), m(500)),
            Err(PaymentRejection::ExceedsDue { due: m(500) })
        );
        assert_eq!(
            check_payment_amount(Money::new(5, Currency::RON), m(500)),
            Err(PaymentRejection::WrongCurrency)
        );
    }
}

crate::variants!(PaymentMethod, Card, Mobile, Cash);
crate::variants!(PaymentStatus, Pending, Succeeded, Failed);
crate::variants!(PaymentKind, Charge, Refund);
