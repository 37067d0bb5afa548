//! Payments: idempotent charges through the gateway port, debts, receipts
//! and refunds.

use super::*;

/// What a payment is for.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentTarget {
    Session(String),
    Reservation(String),
    /// A lost-ticket fee for a plate whose exit matched no session.
    LostTicket(Plate),
}

#[derive(Debug, Clone)]
pub struct PaymentRequest {
    pub target: PaymentTarget,
    pub method: PaymentMethod,
    pub amount: i64,
    pub idempotency_key: String,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct PaymentOutcome {
    pub payment: PaymentRow,
    pub receipt: Option<st::ReceiptRow>,
    /// True when this answers a retry of an earlier request with the same key.
    pub replayed: bool,
    /// Still owed on the same target after this payment.
    pub remaining_due: i64,
}

/// A refund to spread over a sale's succeeded charges.
pub(super) struct RefundPlan<'a> {
    /// Minor units to refund in all.
    pub amount: i64,
    pub reason: &'a str,
    pub actor: &'a str,
    pub now: DateTime<Utc>,
    /// Prefix of the refunds' idempotency keys (one per charge refunded).
    pub key_base: &'a str,
}

impl ParkingService {
    /// Takes a payment exactly once per idempotency key.
    pub async fn pay(&self, req: PaymentRequest) -> Result<PaymentOutcome, ServiceError> {
        self.check_payment_request(&req)?;
        let (row, replayed) = self.write_charge(&req).await?;
        let row = if row.status == "pending" {
            self.drive(row).await?
        } else {
            row
        };
        self.payment_outcome(&req, row, replayed).await
    }

    /// The request's own rules: a usable idempotency key, an accepted method.
    fn check_payment_request(&self, req: &PaymentRequest) -> Result<(), ServiceError> {
        if req.idempotency_key.trim().is_empty() || req.idempotency_key.len() > 200 {
            return Err(invalid(
                "invalid_idempotency_key",
                "idempotency_key",
                "an idempotency key of 1-200 characters is required",
            ));
        }
        if !self.inner.settings.methods.contains(&req.method) {
            return Err(invalid(
                "method_not_accepted",
                "payment_method",
                format!("payment method {} is not accepted here", req.method.to_db()),
            ));
        }
        Ok(())
    }

    /// Writes the charge `pending` (before the gateway is asked), or finds
    /// the one written earlier under the same key (`true`: a replay; one
    /// that failed only because the gateway was down is reopened).
    async fn write_charge(&self, req: &PaymentRequest) -> Result<(PaymentRow, bool), ServiceError> {
        let s = &self.inner.settings;
        let now = req.at;
        let (session_id, reservation_id, purpose) = match &req.target {
            PaymentTarget::Session(id) => (Some(id.clone()), None, "parking"),
            PaymentTarget::Reservation(id) => (None, Some(id.clone()), "reservation"),
            PaymentTarget::LostTicket(_) => (None, None, "lost_ticket"),
        };
        for _ in 0..MAX_ATTEMPTS {
            let mut tx = self.db().write().await?;
            if let Some(existing) = st::payment_by_key(&mut tx, &req.idempotency_key).await? {
                let same = existing.kind == "charge"
                    && existing.session_id == session_id
                    && existing.reservation_id == reservation_id
                    && existing.amount == req.amount
                    && existing.payment_method == req.method.to_db();
                if !same {
                    return Err(ServiceError::Conflict {
                        code: "idempotency_key_reused",
                        message: format!(
                            "idempotency key `{}` was used for a different payment ({})",
                            req.idempotency_key, existing.payment_id
                        ),
                    });
                }
                // A payment that failed only because the gateway was down is tried again.
                if existing.status == "failed"
                    && existing.failure.as_deref() == Some("gateway_unavailable")
                {
                    st::reopen_payment(&mut tx, &existing.payment_id).await?;
                    tx.commit().await?;
                    let mut e = existing;
                    e.status = "pending".into();
                    e.failure = None;
                    return Ok((e, true));
                }
                return Ok((existing, true));
            }
            let (due, plate) = self.amount_due(&mut tx, &req.target, now).await?;
            check_payment_amount(
                Money::new(req.amount, s.currency),
                Money::new(due, s.currency),
            )
            .map_err(payment_rejection)?;
            let new = PaymentRow {
                payment_id: st::new_id(),
                idempotency_key: req.idempotency_key.clone(),
                kind: "charge".into(),
                session_id: session_id.clone(),
                reservation_id: reservation_id.clone(),
                license_plate: plate,
                purpose: purpose.into(),
                parent_id: None,
                payment_method: req.method.to_db().into(),
                status: "pending".into(),
                amount: req.amount,
                currency: s.currency.to_string(),
                reason: None,
                failure: None,
                gateway_ref: None,
                actor: req.actor.clone(),
                created_at: now,
                completed_at: None,
            };
            match st::insert_payment(&mut tx, &new).await {
                Ok(()) => {}
                // A concurrent request with the same key: replay it.
                Err(e) if st::is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
            tx.commit().await?;
            return Ok((new, false));
        }
        Err(ServiceError::Busy)
    }

    /// The reply once the gateway has answered: the payment, its receipt and
    /// what is still owed, or the gateway's refusal as an error.
    async fn payment_outcome(
        &self,
        req: &PaymentRequest,
        row: PaymentRow,
        replayed: bool,
    ) -> Result<PaymentOutcome, ServiceError> {
        let mut c = self.db().read().await?;
        let receipt = st::receipt_for_payment(&mut c, &row.payment_id).await?;
        let remaining_due = self
            .amount_due(&mut c, &req.target, Utc::now().max(req.at))
            .await
            .map(|d| d.0)
            .unwrap_or(0);
        drop(c);
        match (row.status.as_str(), row.failure.as_deref()) {
            ("failed", Some("gateway_unavailable")) => Err(ServiceError::GatewayUnavailable(format!(
                "the payment gateway is unavailable; nothing was charged (payment {}). Retry later with the same idempotency key; at the exit the amount is recorded as a debt (pay later)",
                row.payment_id
            ))),
            ("failed", f) => Err(ServiceError::Declined(f.unwrap_or("declined").to_string())),
            _ => Ok(PaymentOutcome { payment: row, receipt, replayed, remaining_due }),
        }
    }

    /// Asks the gateway about a pending charge or refund and records the answer.
    pub(super) async fn drive(&self, row: PaymentRow) -> Result<PaymentRow, ServiceError> {
        let method = row.method()?;
        let amount = Money::new(row.amount, Currency::new(&row.currency)?);
        let result = if method == PaymentMethod::Cash {
            Ok(format!(
                "cash_{}",
                &row.payment_id[..12.min(row.payment_id.len())]
            ))
        } else {
            let greq = GatewayRequest {
                idempotency_key: &row.idempotency_key,
                method,
                amount,
            };
            if row.kind == "refund" {
                self.inner.gateway.refund(greq).await
            } else {
                self.inner.gateway.charge(greq).await
            }
        };
        let now = Utc::now();
        let (status, reference, failure) = match &result {
            Ok(r) => ("succeeded", Some(r.as_str()), None),
            Err(GatewayError::Unavailable(_)) => ("failed", None, Some("gateway_unavailable")),
            Err(GatewayError::Declined(_)) => ("failed", None, Some("declined")),
        };
        let mut tx = self.db().write().await?;
        if let Some(done) =
            st::complete_payment(&mut tx, &row.payment_id, status, reference, failure, now).await?
        {
            if status == "succeeded" {
                let action = if done.kind == "refund" {
                    AuditAction::RefundIssued
                } else {
                    AuditAction::PaymentRecorded
                };
                st::audit(&mut tx, now, &done.actor, action, Some(&done.payment_id), done.reason.as_deref().or(Some(&done.purpose)), Some(&serde_json::json!({ "amount": done.amount, "currency": done.currency, "method": done.payment_method, "session_id": done.session_id, "reservation_id": done.reservation_id, "gateway_ref": done.gateway_ref }))).await?;
                let body = self.receipt_body(&mut tx, &done).await?;
                st::insert_receipt(&mut tx, &done.payment_id, &body, now).await?;
                self.settle_debts(&mut tx, &done, now).await?;
            } else {
                st::audit(
                    &mut tx,
                    now,
                    &done.actor,
                    AuditAction::PaymentFailed,
                    Some(&done.payment_id),
                    failure,
                    None,
                )
                .await?;
            }
            tx.commit().await?;
            Ok(done)
        } else {
            drop(tx);
            let mut c = self.db().read().await?;
            Ok(st::payment(&mut c, &row.payment_id)
                .await?
                .ok_or_else(|| not_found("payment", &row.payment_id))?)
        }
    }

    pub(super) async fn settle_debts(
        &self,
        c: &mut st::Conn,
        p: &PaymentRow,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let s = &self.inner.settings;
        if let Some(sid) = &p.session_id {
            if let Some(debt) = st::debt_for_session(c, sid)
                .await?
                .filter(|d| d.settled_at.is_none())
            {
                let session = st::session(c, sid).await?;
                let pays: Vec<core::Payment> = st::payments_for_session(c, sid)
                    .await?
                    .iter()
                    .map(PaymentRow::to_core)
                    .collect::<Result<_, _>>()?;
                let fee = Money::new(session.and_then(|x| x.fee).unwrap_or(0), s.currency);
                if core::amount_owed(fee, &pays)?.is_zero() {
                    st::settle_debt(c, &debt.debt_id, now).await?;
                    st::audit(
                        c,
                        now,
                        &p.actor,
                        AuditAction::DebtSettled,
                        Some(&debt.debt_id),
                        None,
                        None,
                    )
                    .await?;
                }
            }
        }
        if let Some(rid) = &p.reservation_id {
            if let Some(debt) = st::debt_for_reservation(c, rid)
                .await?
                .filter(|d| d.settled_at.is_none())
            {
                let (due, _) = self
                    .amount_due(c, &PaymentTarget::Reservation(rid.clone()), now)
                    .await?;
                if due == 0 {
                    st::settle_debt(c, &debt.debt_id, now).await?;
                    st::audit(
                        c,
                        now,
                        &p.actor,
                        AuditAction::DebtSettled,
                        Some(&debt.debt_id),
                        None,
                        None,
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    pub(super) async fn receipt_body(
        &self,
        c: &mut st::Conn,
        p: &PaymentRow,
    ) -> Result<serde_json::Value, ServiceError> {
        let session = match &p.session_id {
            Some(id) => st::session(c, id).await?,
            None => None,
        };
        let reservation = match &p.reservation_id {
            Some(id) => st::reservation(c, id).await?,
            None => None,
        };
        Ok(serde_json::json!({
            "site": self.inner.settings.site,
            "payment_id": p.payment_id,
            "kind": p.kind,
            "purpose": p.purpose,
            "license_plate": p.license_plate,
            "payment_method": p.payment_method,
            "amount": p.amount,
            "currency": p.currency,
            "reason": p.reason,
            "gateway_ref": p.gateway_ref,
            "paid_at": p.completed_at,
            "session": session.map(|s| serde_json::json!({ "session_id": s.session_id, "entry_time": s.entry_time, "exit_time": s.exit_time, "space_id": s.space_id })),
            "reservation": reservation.map(|r| serde_json::json!({ "reservation_id": r.reservation_id, "space_id": r.space_id, "start_time": r.start_time, "end_time": r.end_time })),
        }))
    }

    /// Writes pending refund rows totalling `plan.amount` against the
    /// succeeded charges in `charges`; the caller drives them after commit.
    pub(super) async fn plan_refunds(
        &self,
        c: &mut st::Conn,
        charges: &[PaymentRow],
        plan: RefundPlan<'_>,
    ) -> Result<Vec<PaymentRow>, ServiceError> {
        let RefundPlan {
            amount,
            reason,
            actor,
            now,
            key_base,
        } = plan;
        let mut left = amount;
        let mut out = Vec::new();
        for ch in charges
            .iter()
            .filter(|p| p.kind == "charge" && p.status == "succeeded")
        {
            if left <= 0 {
                break;
            }
            let already: i64 = charges
                .iter()
                .filter(|r| {
                    r.kind == "refund"
                        && r.parent_id.as_deref() == Some(&ch.payment_id)
                        && r.status != "failed"
                })
                .map(|r| r.amount)
                .sum();
            let take = (ch.amount - already).min(left);
            if take <= 0 {
                continue;
            }
            let row = PaymentRow {
                payment_id: st::new_id(),
                idempotency_key: format!("{key_base}:{}", ch.payment_id),
                kind: "refund".into(),
                session_id: ch.session_id.clone(),
                reservation_id: ch.reservation_id.clone(),
                license_plate: ch.license_plate.clone(),
                purpose: "refund".into(),
                parent_id: Some(ch.payment_id.clone()),
                payment_method: ch.payment_method.clone(),
                status: "pending".into(),
                amount: take,
                currency: ch.currency.clone(),
                reason: Some(reason.to_string()),
                failure: None,
                gateway_ref: None,
                actor: actor.to_string(),
                created_at: now,
                completed_at: None,
            };
            st::insert_payment(c, &row).await?;
            left -= take;
            out.push(row);
        }
        Ok(out)
    }

    /// Refunds (part of) a succeeded charge, with a reason.
    pub async fn refund(
        &self,
        payment_id: &str,
        amount: Option<i64>,
        reason: &str,
        idempotency_key: Option<String>,
        actor: &str,
    ) -> Result<PaymentRow, ServiceError> {
        if reason.trim().is_empty() {
            return Err(invalid(
                "reason_required",
                "reason",
                "a refund needs a reason",
            ));
        }
        let now = Utc::now();
        let key =
            idempotency_key.unwrap_or_else(|| format!("refund:{payment_id}:{}", st::new_id()));
        let mut tx = self.db().write().await?;
        if let Some(existing) = st::payment_by_key(&mut tx, &key).await? {
            drop(tx);
            if existing.kind != "refund" || existing.parent_id.as_deref() != Some(payment_id) {
                return Err(ServiceError::Conflict {
                    code: "idempotency_key_reused",
                    message: format!("idempotency key `{key}` was used for something else"),
                });
            }
            return if existing.status == "pending" {
                self.drive(existing).await
            } else {
                Ok(existing)
            };
        }
        let charge = st::payment(&mut tx, payment_id)
            .await?
            .ok_or_else(|| not_found("payment", payment_id))?;
        if charge.kind != "charge" || charge.status != "succeeded" {
            return Err(ServiceError::Conflict {
                code: "not_refundable",
                message: format!("payment {payment_id} is not a succeeded charge"),
            });
        }
        let siblings = match (&charge.session_id, &charge.reservation_id) {
            (Some(s), _) => st::payments_for_session(&mut tx, s).await?,
            (None, Some(r)) => st::payments_for_reservation(&mut tx, r).await?,
            _ => vec![charge.clone()],
        };
        let refunded: i64 = siblings
            .iter()
            .filter(|r| {
                r.kind == "refund"
                    && r.parent_id.as_deref() == Some(payment_id)
                    && r.status != "failed"
            })
            .map(|r| r.amount)
            .sum();
        let refundable = charge.amount - refunded;
        let amount = amount.unwrap_or(refundable);
        if amount <= 0 || amount > refundable {
            return Err(invalid(
                "invalid_amount",
                "amount",
                format!("refund must be between 1 and {refundable} minor units"),
            ));
        }
        let only = [charge.clone()];
        let mut rows = self
            .plan_refunds(
                &mut tx,
                &only,
                RefundPlan {
                    amount,
                    reason,
                    actor,
                    now,
                    key_base: "x",
                },
            )
            .await?;
        let mut row = rows.pop().ok_or(ServiceError::Busy)?;
        // Use the caller's key (plan_refunds derives one for automatic refunds).
        st::set_payment_key(&mut tx, &row.payment_id, &key).await?;
        row.idempotency_key = key;
        tx.commit().await?;
        self.drive(row).await
    }

    /// Re-drives payments left pending by a crash (same keys: never charged twice).
    pub async fn reconcile_pending(&self) -> Result<usize, ServiceError> {
        let pending = {
            let mut c = self.db().read().await?;
            st::pending_payments(&mut c).await?
        };
        let n = pending.len();
        for p in pending {
            if let Err(e) = self.drive(p).await {
                tracing::warn!(error = %e, "pending payment not settled yet");
            }
        }
        Ok(n)
    }
}

/// The core's refusal of an amount, as the API's error.
fn payment_rejection(r: PaymentRejection) -> ServiceError {
    match r {
        PaymentRejection::NonPositive => invalid(
            "invalid_amount",
            "amount",
            "amount must be positive (minor units)",
        ),
        PaymentRejection::NothingDue => ServiceError::Conflict {
            code: "nothing_due",
            message: "nothing is owed".into(),
        },
        PaymentRejection::ExceedsDue { due } => invalid(
            "amount_exceeds_due",
            "amount",
            format!(
                "amount exceeds what is owed ({} minor units)",
                due.amount_minor
            ),
        ),
        PaymentRejection::WrongCurrency => invalid("wrong_currency", "amount", "wrong currency"),
    }
}
