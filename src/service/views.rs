//! Read-only views for the API: vehicles, sessions, payments, receipts and
//! the audit log.

use super::*;

#[derive(Debug, Clone)]
pub struct VehicleView {
    pub license_plate: String,
    pub vehicle: Option<st::VehicleRow>,
    pub lists: core::ListMembership,
    pub permits: Vec<core::Permit>,
    pub open_session: Option<st::SessionRow>,
    pub history: Vec<st::SessionRow>,
    pub payments: Vec<PaymentRow>,
    pub reservations: Vec<st::ReservationRow>,
    pub outstanding_debts: Vec<st::DebtRow>,
}

#[derive(Debug, Clone)]
pub struct SessionView {
    pub session: st::SessionRow,
    pub payments: Vec<PaymentRow>,
    pub gate_decisions: Vec<st::GateDecisionRow>,
    /// For an open session: what leaving now would cost after payments.
    pub amount_due_now: Option<i64>,
    pub debt: Option<st::DebtRow>,
}

impl ParkingService {
    pub async fn vehicle(&self, plate: &Plate) -> Result<VehicleView, ServiceError> {
        let mut c = self.db().read().await?;
        let history = st::sessions(&mut c, None, Some(plate.as_str()), 50).await?;
        let mut payments = Vec::new();
        for s in &history {
            payments.extend(st::payments_for_session(&mut c, &s.session_id).await?);
        }
        Ok(VehicleView {
            license_plate: plate.to_string(),
            vehicle: st::vehicle(&mut c, plate).await?,
            lists: st::list_membership(&mut c, plate).await?,
            permits: st::permits_for(&mut c, &[plate]).await?,
            open_session: st::open_session_for(&mut c, plate).await?,
            history,
            payments,
            reservations: st::reservations_for_plate(&mut c, plate.as_str(), 50).await?,
            outstanding_debts: st::open_debts_for(&mut c, plate.as_str()).await?,
        })
    }

    pub async fn sessions(
        &self,
        status: Option<&str>,
        plate: Option<&str>,
        limit: i64,
    ) -> Result<Vec<st::SessionRow>, ServiceError> {
        let mut c = self.db().read().await?;
        Ok(st::sessions(&mut c, status, plate, limit).await?)
    }

    pub async fn session(&self, id: &str) -> Result<SessionView, ServiceError> {
        let mut c = self.db().read().await?;
        let session = st::session(&mut c, id)
            .await?
            .ok_or_else(|| not_found("session", id))?;
        let amount_due_now = if session.status == "open" {
            self.amount_due(&mut c, &PaymentTarget::Session(id.to_string()), Utc::now())
                .await
                .ok()
                .map(|d| d.0)
        } else {
            None
        };
        Ok(SessionView {
            payments: st::payments_for_session(&mut c, id).await?,
            gate_decisions: st::gate_decisions_for_session(&mut c, id).await?,
            debt: st::debt_for_session(&mut c, id).await?,
            amount_due_now,
            session,
        })
    }

    pub async fn payment(&self, id: &str) -> Result<PaymentRow, ServiceError> {
        let mut c = self.db().read().await?;
        st::payment(&mut c, id)
            .await?
            .ok_or_else(|| not_found("payment", id))
    }

    pub async fn payments(
        &self,
        session_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PaymentRow>, ServiceError> {
        let mut c = self.db().read().await?;
        Ok(st::payments_list(&mut c, session_id, limit).await?)
    }

    pub async fn receipt(&self, id: &str) -> Result<st::ReceiptRow, ServiceError> {
        let mut c = self.db().read().await?;
        st::receipt_for_payment(&mut c, id)
            .await?
            .ok_or_else(|| not_found("receipt", id))
    }

    pub async fn audit_log(
        &self,
        subject: Option<&str>,
        limit: i64,
    ) -> Result<Vec<st::AuditRow>, ServiceError> {
        let mut c = self.db().read().await?;
        Ok(st::audit_log(&mut c, subject, limit).await?)
    }
}
