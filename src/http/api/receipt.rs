//! The printable receipt page: plain HTML with one print button (hidden when printed).

use crate::store::ReceiptRow;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn money(minor: i64, currency: &str) -> String {
    let digits = crate::core::Currency::new(currency)
        .map(|c| c.minor_digits())
        .unwrap_or(2);
    let div = 10i64.pow(digits);
    let sign = if minor < 0 { "-" } else { "" };
    if digits == 0 {
        format!("{sign}{} {currency}", minor.abs())
    } else {
        format!(
            "{sign}{}.{:0width$} {currency}",
            minor.abs() / div,
            minor.abs() % div,
            width = digits as usize
        )
    }
}

pub fn html(r: &ReceiptRow) -> String {
    let b = &r.body;
    let s = |k: &str| b.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let amount = b.get("amount").and_then(|v| v.as_i64()).unwrap_or(0);
    let mut rows = vec![
        ("Receipt", r.number.clone()),
        ("Site", s("site")),
        ("Plate", s("license_plate")),
        ("For", s("purpose")),
        ("Method", s("payment_method")),
        ("Paid at", s("paid_at")),
        ("Reference", s("gateway_ref")),
    ];
    if let Some(sess) = b.get("session").filter(|v| !v.is_null()) {
        rows.push((
            "Entry",
            sess.get("entry_time")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
        ));
        rows.push((
            "Exit",
            sess.get("exit_time")
                .and_then(|v| v.as_str())
                .unwrap_or("—")
                .to_string(),
        ));
    }
    if let Some(res) = b.get("reservation").filter(|v| !v.is_null()) {
        rows.push((
            "Reservation",
            res.get("reservation_id")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
        ));
        rows.push((
            "Space",
            res.get("space_id")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
        ));
    }
    if b.get("kind").and_then(|v| v.as_str()) == Some("refund") {
        rows.push(("Refund reason", s("reason")));
    }
    let table: String = rows
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v)))
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Receipt {num}</title>\
<style>body{{font-family:sans-serif;max-width:28em;margin:2em auto}}th{{text-align:left;padding-right:1em}}\
.total{{font-size:1.4em;margin-top:1em}}@media print{{button{{display:none}}}}</style></head>\
<body><h1>Parking receipt</h1><table>{table}</table><p class=\"total\">Total: <strong>{total}</strong></p>\
<button onclick=\"window.print()\">Print</button></body></html>",
        num = esc(&r.number),
        total = esc(&money(amount, &s("currency")))
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn money_formats_minor_units() {
        assert_eq!(super::money(1050, "RON"), "10.50 RON");
        assert_eq!(super::money(5, "EUR"), "0.05 EUR");
        assert_eq!(super::money(300, "JPY"), "300 JPY");
    }
}
