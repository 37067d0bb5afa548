//! Reservations: booking, cancelling and the no-show sweep.

use super::*;

#[derive(Debug, Clone)]
pub struct ReservationRequest {
    pub plate: Plate,
    pub space_id: Option<String>,
    pub space_type: Option<SpaceType>,
    pub vehicle_type: Option<VehicleType>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub actor: String,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct ReservationOutcome {
    pub reservation: st::ReservationRow,
    pub price_lines: Vec<core::FeeLine>,
    pub amount_due: i64,
}

#[derive(Debug, Clone)]
pub struct CancelOutcome {
    pub reservation: st::ReservationRow,
    pub refund_due: i64,
    pub refunds: Vec<PaymentRow>,
}

impl ParkingService {
    /// Books a bay (or a bay of a type) for `[start, end)`. The database
    /// refuses overlapping bookings of one bay, so concurrent requests for
    /// the same bay cannot both succeed.
    pub async fn reserve(
        &self,
        req: ReservationRequest,
    ) -> Result<ReservationOutcome, ServiceError> {
        let s = &self.inner.settings;
        let window = TimeRange::new(req.start, req.end)
            .map_err(|e| invalid("invalid_time_range", "end_time", e.to_string()))?;
        if req.end <= req.now {
            return Err(invalid(
                "in_the_past",
                "end_time",
                "the reservation ends in the past",
            ));
        }
        for _ in 0..MAX_ATTEMPTS {
            let mut tx = self.db().write().await?;
            let rows = st::all_spaces(&mut tx).await?;
            let spaces: Vec<Space> = rows
                .iter()
                .map(|r| r.to_core(false))
                .collect::<Result<_, _>>()?;
            let existing: Vec<core::Reservation> =
                st::active_reservations_overlapping(&mut tx, req.start, req.end)
                    .await?
                    .iter()
                    .map(|r| r.to_core())
                    .filter_map(Result::transpose)
                    .collect::<Result<_, _>>()?;
            // Candidate bays in order, each checked by the core.
            let (requested, candidates) =
                booking_candidates(&req, &window, &spaces, &existing, &s.policy)?;
            let Some(space) = candidates.first() else {
                return Err(not_found("space", req.space_id.as_deref().unwrap_or("")));
            };
            let tariff = s.tariffs.select(
                Some(space.space_type),
                req.vehicle_type.unwrap_or(VehicleType::Car),
            );
            let quote = reservation_quote(tariff, &window)?;
            let id = st::new_id();
            let new = st::NewReservation {
                id: &id,
                plate: &req.plate,
                space_id: space.id.as_str(),
                space_type: space.space_type,
                requested,
                window,
                price: quote.total,
                now: req.now,
            };
            match st::insert_reservation(&mut tx, &new).await {
                Ok(()) => {}
                Err(e) if st::is_overlap_violation(&e) => {
                    drop(tx);
                    if requested == "space" {
                        return Err(ServiceError::Conflict {
                            code: "space_taken",
                            message: format!(
                                "space {} is already reserved for an overlapping time",
                                space.id
                            ),
                        });
                    }
                    continue; // another booking took this bay: look again
                }
                Err(e) => return Err(e.into()),
            }
            st::audit(&mut tx, req.now, &req.actor, AuditAction::ReservationCreated, Some(&id), None, Some(&serde_json::json!({ "plate": req.plate, "space_id": space.id, "start": req.start, "end": req.end, "price": quote.total }))).await?;
            let row = st::reservation(&mut tx, &id)
                .await?
                .ok_or_else(|| not_found("reservation", &id))?;
            tx.commit().await?;
            return Ok(ReservationOutcome {
                amount_due: row.price,
                reservation: row,
                price_lines: quote.lines,
            });
        }
        Err(ServiceError::Busy)
    }

    pub async fn reservation(
        &self,
        id: &str,
    ) -> Result<(st::ReservationRow, Vec<PaymentRow>), ServiceError> {
        let mut c = self.db().read().await?;
        let r = st::reservation(&mut c, id)
            .await?
            .ok_or_else(|| not_found("reservation", id))?;
        let pays = st::payments_for_reservation(&mut c, id).await?;
        Ok((r, pays))
    }

    /// Cancels a booked reservation; the core says what is refunded.
    pub async fn cancel_reservation(
        &self,
        id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<CancelOutcome, ServiceError> {
        let s = &self.inner.settings;
        let mut tx = self.db().write().await?;
        let row = st::reservation(&mut tx, id)
            .await?
            .ok_or_else(|| not_found("reservation", id))?;
        let r = row.to_core()?.ok_or_else(|| not_found("reservation", id))?;
        let refund = r
            .cancellation_refund(&s.policy.reservations, now)
            .map_err(|e| ServiceError::Conflict {
                code: "not_cancellable",
                message: e.to_string(),
            })?;
        if !st::set_reservation_status(
            &mut tx,
            id,
            ReservationStatus::Booked,
            ReservationStatus::Cancelled,
            None,
            now,
        )
        .await?
        {
            return Err(ServiceError::Conflict {
                code: "not_cancellable",
                message: format!("reservation {id} is no longer booked"),
            });
        }
        let pays = st::payments_for_reservation(&mut tx, id).await?;
        let paid = net_paid(
            &pays
                .iter()
                .map(PaymentRow::to_core)
                .collect::<Result<Vec<_>, _>>()?,
            s.currency,
        )?;
        let refund_now = refund.amount_minor.min(paid.amount_minor).max(0);
        let planned = if refund_now > 0 {
            self.plan_refunds(
                &mut tx,
                &pays,
                RefundPlan {
                    amount: refund_now,
                    reason: "reservation cancelled",
                    actor,
                    now,
                    key_base: &format!("cancel:{id}"),
                },
            )
            .await?
        } else {
            Vec::new()
        };
        st::audit(
            &mut tx,
            now,
            actor,
            AuditAction::ReservationCancelled,
            Some(id),
            None,
            Some(&serde_json::json!({ "refund_due": refund.amount_minor, "refunded": refund_now })),
        )
        .await?;
        let row = st::reservation(&mut tx, id)
            .await?
            .ok_or_else(|| not_found("reservation", id))?;
        tx.commit().await?;
        let mut refunds = Vec::new();
        for p in planned {
            refunds.push(self.drive(p).await?);
        }
        Ok(CancelOutcome {
            reservation: row,
            refund_due: refund.amount_minor,
            refunds,
        })
    }

    /// Releases bookings not checked in within the grace and charges the
    /// no-show fee (recorded as a debt on the plate). Returns their ids.
    pub async fn sweep_no_shows(&self, now: DateTime<Utc>) -> Result<Vec<String>, ServiceError> {
        let s = &self.inner.settings;
        let grace = Duration::minutes(s.policy.reservations.no_show_grace_minutes.into())
            .num_milliseconds();
        let mut tx = self.db().write().await?;
        let mut done = Vec::new();
        for row in st::overdue_bookings(&mut tx, now, grace).await? {
            let Some(r) = row.to_core()? else { continue };
            let tariff = s.tariffs.select(Some(row.space_type()?), VehicleType::Car);
            let Some(ns) = r.no_show(&s.policy.reservations, tariff, now) else {
                continue;
            };
            if !st::set_reservation_status(
                &mut tx,
                &row.reservation_id,
                ReservationStatus::Booked,
                ReservationStatus::NoShow,
                None,
                now,
            )
            .await?
            {
                continue;
            }
            if ns.fee.is_positive() {
                st::insert_debt(
                    &mut tx,
                    &r.plate,
                    None,
                    Some(&row.reservation_id),
                    "no_show",
                    ns.fee,
                    now,
                )
                .await?;
            }
            st::audit(
                &mut tx,
                now,
                "system",
                AuditAction::ReservationNoShow,
                Some(&row.reservation_id),
                Some("not checked in within the grace"),
                Some(&serde_json::json!({ "fee": ns.fee, "released_space": ns.release_space })),
            )
            .await?;
            done.push(row.reservation_id);
        }
        tx.commit().await?;
        Ok(done)
    }
}

pub(super) fn booking_error(r: &BookingRejection, id: &str) -> ServiceError {
    match r {
        BookingRejection::UnknownSpace => not_found("space", id),
        BookingRejection::SpaceOutOfService => ServiceError::Conflict {
            code: "space_out_of_service",
            message: format!("space {id} is out of service"),
        },
        BookingRejection::SpaceTaken { .. } => ServiceError::Conflict {
            code: "space_taken",
            message: format!("space {id} is already reserved for an overlapping time"),
        },
        BookingRejection::NoCapacity => ServiceError::Conflict {
            code: "no_capacity",
            message: format!(
                "booking space {id} would leave too few bays of its type for earlier type bookings"
            ),
        },
    }
}

/// The bays a booking may take, best first, each checked by the core: the
/// named bay, or the free bays of the requested (or the vehicle's eligible)
/// types for the whole window. Also says which was asked for (`space` or
/// `type`).
fn booking_candidates<'a>(
    req: &ReservationRequest,
    window: &TimeRange,
    spaces: &'a [Space],
    existing: &[core::Reservation],
    policy: &SitePolicy,
) -> Result<(&'static str, Vec<&'a Space>), ServiceError> {
    let free_for_window =
        |target: &ReservationTarget| check_booking(target, window, spaces, existing).is_ok();
    if let Some(id) = &req.space_id {
        let target = ReservationTarget::Space(core::SpaceId::new(id.clone()));
        check_booking(&target, window, spaces, existing).map_err(|r| booking_error(&r, id))?;
        let named = spaces.iter().filter(|sp| sp.id.as_str() == id).collect();
        return Ok(("space", named));
    }
    let types = match (req.space_type, req.vehicle_type) {
        (Some(t), _) => vec![t],
        (None, Some(v)) => policy.compatibility.eligible_types(v, &[]),
        (None, None) => {
            return Err(invalid(
                "target_required",
                "space_id",
                "give `space_id`, `space_type` or `vehicle_type`",
            ))
        }
    };
    let mut out = Vec::new();
    for t in types {
        if !free_for_window(&ReservationTarget::SpaceType(t)) {
            continue;
        }
        let mut of_type: Vec<&Space> = spaces
            .iter()
            .filter(|sp| {
                sp.space_type == t && free_for_window(&ReservationTarget::Space(sp.id.clone()))
            })
            .collect();
        of_type.sort_by_key(|sp| (sp.rank, sp.id.clone()));
        out.extend(of_type);
    }
    if out.is_empty() {
        return Err(ServiceError::Conflict {
            code: "no_capacity",
            message: "no bay of that type is free for the whole window".into(),
        });
    }
    Ok(("type", out))
}
