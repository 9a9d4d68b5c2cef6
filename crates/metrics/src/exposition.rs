//! Prometheus text exposition format 0.0.4, for m3s's own `/metrics`.

use std::fmt::Write;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Builds an exposition document one metric family at a time.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

#[derive(Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Exposition {
    /// Starts a family: `# HELP` and `# TYPE`.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", format_value(value));
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_and_specials() {
        let mut e = super::Exposition::default();
        e.family("m3s_x_total", super::Kind::Counter, "Things.\nMore.")
            .sample("m3s_x_total", &[("path", "a\"b\\c\nd")], 3.0)
            .sample("m3s_x_total", &[], f64::NEG_INFINITY);
        assert_eq!(
            e.finish(),
            "# HELP m3s_x_total Things.\\nMore.\n# TYPE m3s_x_total counter\nm3s_x_total{path=\"a\\\"b\\\\c\\nd\"} 3\nm3s_x_total -Inf\n"
        );
    }
}
