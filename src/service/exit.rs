//! Exit: a plate at an exit gate is matched to its session, the fee is
//! settled or refused, and the session closes.

use super::*;

#[derive(Debug, Clone)]
pub struct ExitRequest {
    pub plate: Plate,
    pub gate: Option<String>,
    pub at: DateTime<Utc>,
    pub confidence: f64,
    pub evidence: Option<serde_json::Value>,
    pub source: Source,
}

#[derive(Debug, Clone)]
pub struct ExitOutcome {
    pub decision_id: String,
    pub license_plate: String,
    /// `open`, `payment_required` or `hold`.
    pub verdict: String,
    pub reason: String,
    pub explanation: String,
    pub gate: Option<String>,
    pub gate_command: String,
    /// `exact`, `fuzzy`, `ambiguous` or `none`.
    pub match_kind: String,
    pub session_id: Option<String>,
    /// The plate of the matched session (differs from the read on a fuzzy match).
    pub matched_plate: Option<String>,
    pub amount_due: i64,
    pub currency: String,
    pub fee: Option<core::Fee>,
    pub debt_id: Option<String>,
    pub refunds: Vec<PaymentRow>,
    pub flags: Vec<FlagRef>,
    pub offline: bool,
    pub timestamp: DateTime<Utc>,
}

impl ParkingService {
    /// Decides an exit (camera or API): matches the session (exact, then
    /// confusion-aware), prices it, closes it when the gate opens.
    pub async fn exit(&self, req: ExitRequest) -> Result<ExitOutcome, ServiceError> {
        let gate = req.gate.clone().or_else(|| self.default_gate());
        let (out, refunds_to_drive) = match self.exit_db(&req, gate.clone()).await {
            Err(ServiceError::Unavailable(why)) => {
                tracing::warn!(plate = %req.plate, %why, "database unavailable: offline exit decision");
                (self.exit_offline(&req, gate), Vec::new())
            }
            other => other?,
        };
        self.command_gate(
            GateOrder {
                direction: "exit",
                decision_id: &out.decision_id,
                gate: out.gate.as_deref(),
                plate: &out.license_plate,
                session: out.session_id.as_deref(),
                command: &out.gate_command,
                reason: &out.reason,
            },
            GateDisplay {
                plate: out.license_plate.clone(),
                verdict: out.verdict.clone(),
                reason: out.reason.clone(),
                message: out.explanation.clone(),
                space_id: None,
                level: None,
                zone: None,
                amount_due: (out.amount_due > 0).then_some(out.amount_due),
            },
        )
        .await;
        let mut out = out;
        for r in refunds_to_drive {
            match self.drive(r).await {
                Ok(row) => {
                    if let Some(slot) = out
                        .refunds
                        .iter_mut()
                        .find(|x| x.payment_id == row.payment_id)
                    {
                        *slot = row;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "early-departure refund left pending"),
            }
        }
        Ok(out)
    }

    /// Core exit decision over a snapshot (no writes). `open` is the plate's
    /// open session when the caller has just read it (saves reading it again).
    pub(super) async fn exit_snapshot(
        &self,
        c: &mut st::Conn,
        plate: &Plate,
        open: Option<st::SessionRow>,
        now: DateTime<Utc>,
        policy: &SitePolicy,
    ) -> Result<
        (
            ExitDecision,
            ExitMatch,
            Option<st::SessionRow>,
            Option<st::ReservationRow>,
        ),
        ServiceError,
    > {
        let s = &self.inner.settings;
        let open = match open {
            Some(row) => Some(row),
            None => st::open_session_for(c, plate).await?,
        };
        let (m, rows) = match open {
            Some(row) => (
                ExitMatch::Exact {
                    session: core::SessionId::new(row.session_id.clone()),
                },
                vec![row],
            ),
            None => {
                let rows = st::open_sessions(c).await?;
                let opens: Vec<OpenSession> = rows
                    .iter()
                    .map(|r| r.to_open())
                    .filter_map(Result::transpose)
                    .collect::<Result<_, _>>()?;
                (match_exit(plate, &opens, &policy.exit_matching), rows)
            }
        };
        let row = m
            .session()
            .and_then(|id| rows.iter().find(|r| r.session_id == id.as_str()))
            .cloned();
        let session = row.as_ref().map(|r| r.to_open()).transpose()?.flatten();
        let payments: Vec<core::Payment> = match &row {
            Some(r) => st::payments_for_session(c, &r.session_id).await?,
            None => st::unattached_payments(c, plate, now - Duration::hours(24)).await?,
        }
        .iter()
        .map(PaymentRow::to_core)
        .collect::<Result<_, _>>()?;
        let mut plates = vec![plate];
        if let Some(sess) = &session {
            plates.push(&sess.plate);
        }
        let permits = st::permits_for(c, &plates).await?;
        let tariff = match &session {
            Some(sess) => s.tariffs.select(sess.space_type, sess.vehicle_type),
            None => &s.tariffs.default,
        };
        let res_row = match row.as_ref().and_then(|r| r.reservation_id.clone()) {
            Some(id) => st::reservation(c, &id).await?,
            None => None,
        };
        let reservation = match &res_row {
            Some(r) => {
                let paid: Vec<core::Payment> = st::payments_for_reservation(c, &r.reservation_id)
                    .await?
                    .iter()
                    .map(PaymentRow::to_core)
                    .collect::<Result<_, _>>()?;
                r.to_core()?
                    .filter(|core_r| core_r.is_paid(&paid).unwrap_or(false))
            }
            None => None,
        };
        let decision = decide_exit(&ExitContext {
            policy,
            read_plate: plate,
            exit_match: &m,
            session: session.as_ref(),
            payments: &payments,
            permits: &permits,
            tariff,
            reservation: reservation.as_ref(),
            now,
        })?;
        Ok((decision, m, row, res_row))
    }

    pub(super) fn exit_policy(&self) -> std::borrow::Cow<'_, SitePolicy> {
        let policy = &self.inner.settings.policy;
        let effective = policy.unpaid_exit_when(self.inner.gateway.is_available());
        if effective == policy.unpaid_exit {
            std::borrow::Cow::Borrowed(policy)
        } else {
            let mut p = policy.clone();
            p.unpaid_exit = effective;
            std::borrow::Cow::Owned(p)
        }
    }

    pub(super) async fn exit_db(
        &self,
        req: &ExitRequest,
        gate: Option<String>,
    ) -> Result<(ExitOutcome, Vec<PaymentRow>), ServiceError> {
        let policy = self.exit_policy();
        for _attempt in 0..MAX_ATTEMPTS {
            let mut tx = self.db().write().await?;
            let mut audit = st::AuditBatch::default();
            let (decision, m, row, res_row) = self
                .exit_snapshot(&mut tx, &req.plate, None, req.at, &policy)
                .await?;
            let case = ExitCase {
                req,
                gate: gate.as_deref(),
                decision: &decision,
                reservation: res_row.as_ref(),
            };
            let closing = match &decision.close_session {
                Some(sid) => {
                    match self
                        .close_for_exit(&mut tx, &mut audit, &case, sid.as_str())
                        .await?
                    {
                        Some(closing) => closing,
                        // Closed meanwhile by another read: decide again.
                        None => continue,
                    }
                }
                None => Closing::default(),
            };
            let refunds = closing.refunds.clone();
            let out = self
                .record_exit(&mut tx, &mut audit, &case, &m, row, closing)
                .await?;
            tx.commit().await?;
            return Ok((out, refunds));
        }
        Err(ServiceError::Busy)
    }

    /// Closes the matched session and releases its bay, completes a booking
    /// (refunding an early departure) and records a pay-later debt. `None`
    /// when another read closed the session first.
    async fn close_for_exit(
        &self,
        tx: &mut st::Conn,
        audit: &mut st::AuditBatch,
        case: &ExitCase<'_>,
        sid: &str,
    ) -> Result<Option<Closing>, ServiceError> {
        let ExitCase {
            req,
            gate,
            decision,
            ..
        } = *case;
        let now = req.at;
        let fee_minor = decision.fee.as_ref().map(|f| f.total.amount_minor);
        let end = st::SessionEnd {
            id: sid,
            status: "closed",
            ended: now,
            exit_gate: gate,
            exit_read_id: req.source.read_id(),
            fee_minor,
            reason: decision.reason.to_db(),
        };
        if !st::close_session(tx, &end).await? {
            return Ok(None);
        }
        let released = st::release_space_of(tx, sid, now).await?;
        audit.push(
            now,
            &req.source.actor(),
            AuditAction::SessionClosed,
            Some(sid),
            Some(decision.reason.to_db()),
            Some(&serde_json::json!({ "space": released, "fee": fee_minor })),
        );
        let refunds = self.complete_booking(tx, case).await?;
        let mut debt_id = None;
        if let Some(debt) = &decision.debt {
            let id = st::insert_debt(
                tx,
                &debt.plate,
                Some(sid),
                None,
                "unpaid_exit",
                debt.amount,
                now,
            )
            .await?;
            audit.push(
                now,
                &req.source.actor(),
                AuditAction::DebtRecorded,
                Some(sid),
                Some("pay_later"),
                Some(&serde_json::json!({ "debt_id": id, "amount": debt.amount })),
            );
            debt_id = Some(id);
        }
        Ok(Some(Closing { debt_id, refunds }))
    }

    /// A checked-in booking is completed; leaving before its end refunds
    /// what the site's early-departure rule gives back (pending refund rows,
    /// driven after the commit).
    async fn complete_booking(
        &self,
        tx: &mut st::Conn,
        case: &ExitCase<'_>,
    ) -> Result<Vec<PaymentRow>, ServiceError> {
        let (req, now) = (case.req, case.req.at);
        let Some(r) = case.reservation.filter(|r| r.status == "checked_in") else {
            return Ok(Vec::new());
        };
        st::set_reservation_status(
            tx,
            &r.reservation_id,
            ReservationStatus::CheckedIn,
            ReservationStatus::Completed,
            None,
            now,
        )
        .await?;
        let Some(core_r) = r.to_core()? else {
            return Ok(Vec::new());
        };
        let rules = &self.inner.settings.policy.reservations;
        let refund = core_r.early_departure_refund(rules, now)?;
        if !refund.is_positive() {
            return Ok(Vec::new());
        }
        let charges = st::payments_for_reservation(tx, &r.reservation_id).await?;
        self.plan_refunds(
            tx,
            &charges,
            RefundPlan {
                amount: refund.amount_minor,
                reason: "early departure",
                actor: &req.source.actor(),
                now,
                key_base: &format!("early-departure:{}", r.reservation_id),
            },
        )
        .await
    }

    /// Records the decision (gate decision, flags, audit) in the
    /// transaction and builds the reply.
    async fn record_exit(
        &self,
        tx: &mut st::Conn,
        audit: &mut st::AuditBatch,
        case: &ExitCase<'_>,
        m: &ExitMatch,
        row: Option<st::SessionRow>,
        closing: Closing,
    ) -> Result<ExitOutcome, ServiceError> {
        let ExitCase {
            req,
            gate,
            decision,
            ..
        } = *case;
        let (plate, now) = (&req.plate, req.at);
        let gate = gate.map(String::from);
        let session_id = row.as_ref().map(|r| r.session_id.clone());
        let decision_id = st::new_id();
        let (verdict, amount) = match decision.verdict {
            ExitVerdict::OpenGate => ("open", None),
            ExitVerdict::PaymentRequired { amount } => {
                ("payment_required", Some(amount.amount_minor))
            }
            ExitVerdict::HoldForStaff => ("hold", None),
        };
        let command = if decision.opens_gate() {
            "open"
        } else {
            "deny"
        };
        let action = if decision.opens_gate() {
            AuditAction::ExitOpened
        } else {
            AuditAction::ExitHeld
        };
        let detail = serde_json::json!({ "decision_id": decision_id, "verdict": verdict, "owed": decision.owed, "match": m, "gate": gate });
        let flag_ids = self
            .record_decision(
                tx,
                audit,
                DecisionRecord {
                    id: &decision_id,
                    direction: "exit",
                    gate: gate.as_deref(),
                    plate,
                    session_id: session_id.as_deref(),
                    command,
                    verdict,
                    reason: decision.reason.to_db(),
                    explanation: &decision.explanation,
                    amount,
                    source: &req.source,
                    evidence: req.evidence.as_ref(),
                    now,
                    flags: &decision.flags,
                    action,
                    detail,
                },
            )
            .await?;
        let match_kind = match m {
            ExitMatch::Exact { .. } => "exact",
            ExitMatch::Fuzzy { .. } => "fuzzy",
            ExitMatch::Ambiguous { .. } => "ambiguous",
            ExitMatch::None => "none",
        };
        let amount_due = match decision.verdict {
            ExitVerdict::PaymentRequired { amount } => amount.amount_minor,
            _ => decision.owed.amount_minor,
        };
        Ok(ExitOutcome {
            decision_id,
            license_plate: plate.to_string(),
            verdict: verdict.into(),
            reason: decision.reason.to_db().to_string(),
            explanation: decision.explanation.clone(),
            gate,
            gate_command: command.into(),
            match_kind: match_kind.into(),
            session_id,
            matched_plate: row.map(|r| r.license_plate),
            amount_due,
            currency: self.inner.settings.currency.to_string(),
            fee: decision.fee.clone(),
            debt_id: closing.debt_id,
            refunds: closing.refunds,
            flags: flag_refs(&flag_ids, &decision.flags),
            offline: false,
            timestamp: now,
        })
    }

    /// What is owed on a payment target right now.
    pub(super) async fn amount_due(
        &self,
        c: &mut st::Conn,
        target: &PaymentTarget,
        now: DateTime<Utc>,
    ) -> Result<(i64, Option<String>), ServiceError> {
        let s = &self.inner.settings;
        match target {
            PaymentTarget::Session(id) => {
                let row = st::session(c, id)
                    .await?
                    .ok_or_else(|| not_found("session", id))?;
                let plate = Plate::parse(&row.license_plate)?;
                if row.status == "open" {
                    let mut policy = s.policy.clone();
                    policy.unpaid_exit = core::UnpaidExitPolicy::RequirePayment;
                    // One open session per plate: this row is the plate's open session.
                    let (d, _, _, _) = self
                        .exit_snapshot(c, &plate, Some(row.clone()), now, &policy)
                        .await?;
                    if d.close_session.as_ref().map(|x| x.as_str()) == Some(id.as_str())
                        || matches!(d.verdict, ExitVerdict::PaymentRequired { .. })
                    {
                        return Ok((d.owed.amount_minor, Some(row.license_plate)));
                    }
                    // The open session is not the plate's match (should not happen): price it directly.
                    let pays: Vec<core::Payment> = st::payments_for_session(c, id)
                        .await?
                        .iter()
                        .map(PaymentRow::to_core)
                        .collect::<Result<_, _>>()?;
                    let tariff = s.tariffs.select(row.space_type()?, row.vehicle_type()?);
                    let fee = core::fee(tariff, row.entry_time, now.max(row.entry_time))?;
                    return Ok((
                        core::amount_owed(fee.total, &pays)?.amount_minor,
                        Some(row.license_plate),
                    ));
                }
                let pays: Vec<core::Payment> = st::payments_for_session(c, id)
                    .await?
                    .iter()
                    .map(PaymentRow::to_core)
                    .collect::<Result<_, _>>()?;
                let fee = Money::new(row.fee.unwrap_or(0), s.currency);
                Ok((
                    core::amount_owed(fee, &pays)?.amount_minor,
                    Some(row.license_plate),
                ))
            }
            PaymentTarget::Reservation(id) => {
                let r = st::reservation(c, id)
                    .await?
                    .ok_or_else(|| not_found("reservation", id))?;
                let pays: Vec<core::Payment> = st::payments_for_reservation(c, id)
                    .await?
                    .iter()
                    .map(PaymentRow::to_core)
                    .collect::<Result<_, _>>()?;
                let price = if r.status == "cancelled" { 0 } else { r.price };
                let debt = st::debt_for_reservation(c, id)
                    .await?
                    .map(|d| d.amount)
                    .unwrap_or(0);
                let owed = core::amount_owed(Money::new(price + debt, s.currency), &pays)?;
                Ok((owed.amount_minor, Some(r.license_plate)))
            }
            PaymentTarget::LostTicket(plate) => {
                let pays: Vec<core::Payment> =
                    st::unattached_payments(c, plate, now - Duration::hours(24))
                        .await?
                        .iter()
                        .map(PaymentRow::to_core)
                        .collect::<Result<_, _>>()?;
                let owed = core::amount_owed(s.tariffs.default.lost_ticket(), &pays)?;
                Ok((owed.amount_minor, Some(plate.to_string())))
            }
        }
    }
}

/// One exit being decided: the request, its gate, what the core decided and
/// the booking the session belongs to.
#[derive(Clone, Copy)]
struct ExitCase<'a> {
    req: &'a ExitRequest,
    gate: Option<&'a str>,
    decision: &'a ExitDecision,
    reservation: Option<&'a st::ReservationRow>,
}

/// What closing the session wrote besides the session itself.
#[derive(Default)]
struct Closing {
    debt_id: Option<String>,
    refunds: Vec<PaymentRow>,
}
