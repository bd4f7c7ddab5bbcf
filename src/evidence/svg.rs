//! The data-flow diagram as SVG, drawn from its layout (`layout.rs`): no Graphviz, no layout
//! engine. Every workload's box carries its full SPIFFE ID as a tooltip.

use std::fmt::Write;

use super::collapse::for_drawing;
use super::layout::{layout_noted, zone_title, Diagram, EdgeStyle, Rect, CHAR_W, LINE};
use super::{Graph, Scope, Standing};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn fill(s: Standing) -> &'static str {
    match s {
        Standing::CardholderDataEnvironment => "#f4b6b6",
        Standing::ConnectedTo => "#f9d9a8",
        Standing::OutOfScopeCandidate => "#c8e6c9",
        Standing::Unidentified => "#e0e0e0",
    }
}

fn zone_stroke(s: Standing) -> &'static str {
    match s {
        Standing::CardholderDataEnvironment => "#c62828",
        Standing::ConnectedTo => "#ef6c00",
        Standing::OutOfScopeCandidate => "#2e7d32",
        Standing::Unidentified => "#757575",
    }
}

fn line_look(s: EdgeStyle) -> (&'static str, f64, &'static str) {
    match s {
        EdgeStyle::InClear => ("#c62828", 2.5, ""),
        EdgeStyle::Denied => ("#757575", 1.2, " stroke-dasharray=\"6 4\""),
        EdgeStyle::Allowed => ("#424242", 1.2, ""),
    }
}

fn rect(out: &mut String, r: &Rect, fill: &str, stroke: &str, extra: &str) {
    let _ = writeln!(
        out,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"6\" fill=\"{fill}\" stroke=\"{stroke}\"{extra}/>",
        r.x, r.y, r.w, r.h
    );
}

/// Lines of text, the first baseline one line below `y`, starting at `x`.
fn text(out: &mut String, x: f64, y: f64, lines: &[String], extra: &str) {
    let _ = write!(
        out,
        "<text x=\"{x:.1}\" y=\"{:.1}\"{extra}>",
        y + LINE - 4.0
    );
    for (i, l) in lines.iter().enumerate() {
        let dy = if i == 0 { 0.0 } else { LINE };
        let _ = write!(out, "<tspan x=\"{x:.1}\" dy=\"{dy}\">{}</tspan>", escape(l));
    }
    out.push_str("</text>\n");
}

/// The diagram of `g` as an SVG document.
pub fn svg(g: &Graph, scope: &Scope) -> String {
    let (drawn, drawn_scope, collapsed) = for_drawing(g, scope);
    let note = collapsed
        .map(|c| {
            format!(
                "; {} workloads and {} flows, drawn by namespace: not drawn are {} flows inside one box and {} edges away from the cardholder data environment without card numbers in clear (all are in dataflow.dot and dataflow.json)",
                c.workloads, c.flows, c.inside, c.elsewhere
            )
        })
        .unwrap_or_default();
    render(&layout_noted(&drawn, &drawn_scope, &note))
}

pub fn render(d: &Diagram) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">",
        w = d.width.ceil(),
        h = d.height.ceil()
    );
    out.push_str("<defs>");
    for (id, colour) in [
        ("a-allowed", "#424242"),
        ("a-denied", "#757575"),
        ("a-clear", "#c62828"),
    ] {
        let _ = write!(
            out,
            "<marker id=\"{id}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"{colour}\"/></marker>"
        );
    }
    out.push_str("</defs>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    text(
        &mut out,
        16.0,
        12.0,
        std::slice::from_ref(&d.title),
        " font-size=\"14\" font-weight=\"bold\"",
    );
    for z in &d.zones {
        let dash = if z.standing == Standing::CardholderDataEnvironment {
            ""
        } else {
            " stroke-dasharray=\"8 4\""
        };
        rect(
            &mut out,
            &z.rect,
            "none",
            zone_stroke(z.standing),
            &format!(" stroke-width=\"2\"{dash}"),
        );
        text(
            &mut out,
            z.rect.x + 8.0,
            z.rect.y + 3.0,
            std::slice::from_ref(&z.title),
            &format!(" font-weight=\"bold\" fill=\"{}\"", zone_stroke(z.standing)),
        );
    }
    for n in &d.namespaces {
        rect(&mut out, &n.rect, "#fafafa", "#9e9e9e", "");
        text(
            &mut out,
            n.rect.x + 6.0,
            n.rect.y + 1.0,
            std::slice::from_ref(&n.title),
            " fill=\"#616161\"",
        );
    }
    for n in &d.nodes {
        let _ = writeln!(out, "<g><title>{}</title>", escape(&n.id));
        rect(&mut out, &n.rect, fill(n.standing), "#616161", "");
        let x = n.rect.x + (n.rect.w - n.name.chars().count() as f64 * CHAR_W) / 2.0;
        text(
            &mut out,
            x,
            n.rect.y + (n.rect.h - LINE) / 2.0,
            std::slice::from_ref(&n.name),
            "",
        );
        out.push_str("</g>\n");
    }
    for e in &d.edges {
        let (colour, width, dash) = line_look(e.style);
        let marker = match e.style {
            EdgeStyle::InClear => "a-clear",
            EdgeStyle::Denied => "a-denied",
            EdgeStyle::Allowed => "a-allowed",
        };
        let points: Vec<String> = e
            .path
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            out,
            "<g><title>{} → {}</title><polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width}\"{dash} marker-end=\"url(#{marker})\"/>",
            escape(&e.caller),
            escape(&e.callee),
            points.join(" ")
        );
        let [(x1, y1), (x2, y2)] = e.leader;
        let _ = writeln!(out, "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{colour}\" stroke-width=\"0.8\" stroke-dasharray=\"1 3\"/>");
        rect(
            &mut out,
            &e.label_rect,
            "white",
            colour,
            " stroke-width=\"0.8\"",
        );
        text(
            &mut out,
            e.label_rect.x + 5.0,
            e.label_rect.y + 3.0,
            &e.label,
            &format!(" fill=\"{colour}\""),
        );
        out.push_str("</g>\n");
    }
    legend(&mut out, &d.legend);
    out.push_str("</svg>\n");
    out
}

fn legend(out: &mut String, r: &Rect) {
    rect(out, r, "white", "#bdbdbd", "");
    text(
        out,
        r.x + 8.0,
        r.y + 4.0,
        &["Legend".to_owned()],
        " font-weight=\"bold\"",
    );
    let zones = [
        Standing::CardholderDataEnvironment,
        Standing::ConnectedTo,
        Standing::OutOfScopeCandidate,
        Standing::Unidentified,
    ];
    for (i, z) in zones.iter().enumerate() {
        let y = r.y + 4.0 + LINE * (i as f64 + 1.0);
        let swatch = Rect {
            x: r.x + 8.0,
            y: y + 3.0,
            w: 14.0,
            h: 10.0,
        };
        rect(out, &swatch, fill(*z), zone_stroke(*z), "");
        text(out, r.x + 28.0, y, &[zone_title(*z).to_owned()], "");
    }
    let lines = [
        (EdgeStyle::Allowed, "requests allowed"),
        (EdgeStyle::Denied, "every request denied"),
        (EdgeStyle::InClear, "card numbers in clear"),
    ];
    for (i, (style, what)) in lines.iter().enumerate() {
        let (colour, width, dash) = line_look(*style);
        let y = r.y + 4.0 + LINE * (i as f64 + 1.0);
        let x = r.x + 320.0;
        let _ = writeln!(out, "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"{width}\"{dash}/>", y + 8.0, x + 24.0, y + 8.0);
        text(out, x + 30.0, y, &[(*what).to_owned()], "");
    }
}
