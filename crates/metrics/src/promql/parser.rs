//! PromQL parser: tokens to `Expr`, with Prometheus's precedence
//! (`or` < `and unless` < comparisons < `+ -` < `* / %` < unary minus < `^`).

use super::ParseError;
use super::lexer::{Tok, Token, lex};
use crate::model::{MatchOp, Matcher, NAME_LABEL};

#[derive(Clone, Debug)]
pub enum Expr {
    Number(f64),
    Str(String),
    Selector(Selector),
    /// A range selector: the selector and its range in milliseconds.
    Range(Selector, i64),
    Call(Func, Vec<Expr>),
    Aggregate {
        op: AggOp,
        param: Option<Box<Expr>>,
        expr: Box<Expr>,
        grouping: Grouping,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        return_bool: bool,
        matching: VectorMatching,
    },
    Neg(Box<Expr>),
}

#[derive(Clone, Debug)]
pub struct Selector {
    pub matchers: Vec<Matcher>,
    pub offset: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Rate,
    Irate,
    Increase,
    Delta,
    Idelta,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    SumOverTime,
    CountOverTime,
    LastOverTime,
    Abs,
    Ceil,
    Floor,
    Round,
    Sqrt,
    Exp,
    Ln,
    Log2,
    Log10,
    Clamp,
    ClampMin,
    ClampMax,
    Time,
    Scalar,
    Vector,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ArgType {
    Scalar,
    Vector,
    Matrix,
}

impl Func {
    fn by_name(name: &str) -> Option<(Func, &'static [ArgType], usize)> {
        use ArgType::*;
        // (function, argument types, how many are required)
        Some(match name {
            "rate" => (Func::Rate, &[Matrix], 1),
            "irate" => (Func::Irate, &[Matrix], 1),
            "increase" => (Func::Increase, &[Matrix], 1),
            "delta" => (Func::Delta, &[Matrix], 1),
            "idelta" => (Func::Idelta, &[Matrix], 1),
            "avg_over_time" => (Func::AvgOverTime, &[Matrix], 1),
            "min_over_time" => (Func::MinOverTime, &[Matrix], 1),
            "max_over_time" => (Func::MaxOverTime, &[Matrix], 1),
            "sum_over_time" => (Func::SumOverTime, &[Matrix], 1),
            "count_over_time" => (Func::CountOverTime, &[Matrix], 1),
            "last_over_time" => (Func::LastOverTime, &[Matrix], 1),
            "abs" => (Func::Abs, &[Vector], 1),
            "ceil" => (Func::Ceil, &[Vector], 1),
            "floor" => (Func::Floor, &[Vector], 1),
            "round" => (Func::Round, &[Vector, Scalar], 1),
            "sqrt" => (Func::Sqrt, &[Vector], 1),
            "exp" => (Func::Exp, &[Vector], 1),
            "ln" => (Func::Ln, &[Vector], 1),
            "log2" => (Func::Log2, &[Vector], 1),
            "log10" => (Func::Log10, &[Vector], 1),
            "clamp" => (Func::Clamp, &[Vector, Scalar, Scalar], 3),
            "clamp_min" => (Func::ClampMin, &[Vector, Scalar], 2),
            "clamp_max" => (Func::ClampMax, &[Vector, Scalar], 2),
            "time" => (Func::Time, &[], 0),
            "scalar" => (Func::Scalar, &[Vector], 1),
            "vector" => (Func::Vector, &[Scalar], 1),
            _ => return None,
        })
    }

    fn returns(self) -> ArgType {
        match self {
            Func::Time | Func::Scalar => ArgType::Scalar,
            _ => ArgType::Vector,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Topk,
    Bottomk,
}

#[derive(Clone, Debug, Default)]
pub enum Grouping {
    #[default]
    None,
    By(Vec<String>),
    Without(Vec<String>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    pub fn is_comparison(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le)
    }

    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }

    fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod => 5,
            BinOp::Pow => 6,
        }
    }
}

/// Vector matching of a binary operation: `on (labels)` or `ignoring (labels)`.
#[derive(Clone, Debug, Default)]
pub struct VectorMatching {
    pub on: bool,
    pub labels: Vec<String>,
}

/// Parses a PromQL expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let tokens = lex(src)?;
    let mut p = Parser { src, tokens, i: 0 };
    let expr = p.expr(0)?;
    if p.peek() != &Tok::Eof {
        return Err(p.error("unexpected token after the expression"));
    }
    p.check_types(&expr)?;
    Ok(expr)
}

/// Parses a series selector (`match[]` of the labels and series APIs).
pub fn parse_selector(src: &str) -> Result<Vec<Matcher>, ParseError> {
    match parse(src)? {
        Expr::Selector(s) => Ok(s.matchers),
        _ => Err(ParseError::new(src, 0, "expected a series selector")),
    }
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.tokens[self.i].tok
    }

    fn pos(&self) -> usize {
        self.tokens[self.i].pos
    }

    fn next(&mut self) -> Tok {
        let t = self.tokens[self.i].tok.clone();
        if self.i + 1 < self.tokens.len() {
            self.i += 1;
        }
        t
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        let message = message.into();
        let message = if self.peek() == &Tok::Eof { format!("{message}: unexpected end of input") } else { message };
        ParseError::new(self.src, self.pos(), message)
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), ParseError> {
        if *self.peek() == tok {
            self.next();
            Ok(())
        } else {
            Err(self.error(format!("expected {what}")))
        }
    }

    fn ident_is(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Ident(w) if w.eq_ignore_ascii_case(word))
    }

    fn binop(&self) -> Option<BinOp> {
        Some(match self.peek() {
            Tok::Op("+") => BinOp::Add,
            Tok::Op("-") => BinOp::Sub,
            Tok::Op("*") => BinOp::Mul,
            Tok::Op("/") => BinOp::Div,
            Tok::Op("%") => BinOp::Mod,
            Tok::Op("^") => BinOp::Pow,
            Tok::Op("==") => BinOp::Eq,
            Tok::Match("!=") => BinOp::Ne,
            Tok::Op(">") => BinOp::Gt,
            Tok::Op("<") => BinOp::Lt,
            Tok::Op(">=") => BinOp::Ge,
            Tok::Op("<=") => BinOp::Le,
            Tok::Ident(w) if w.eq_ignore_ascii_case("and") => BinOp::And,
            Tok::Ident(w) if w.eq_ignore_ascii_case("or") => BinOp::Or,
            Tok::Ident(w) if w.eq_ignore_ascii_case("unless") => BinOp::Unless,
            Tok::Ident(w) if w == "atan2" => return None,
            _ => return None,
        })
    }

    /// Binary expressions with precedence at least `min`.
    fn expr(&mut self, min: u8) -> Result<Expr, ParseError> {
        let mut lhs = self.unary()?;
        while let Some(op) = self.binop() {
            let prec = op.precedence();
            // `^` never shows here: `power` consumes it (it binds tighter than unary minus).
            if prec < min || op == BinOp::Pow {
                break;
            }
            self.next();
            let (return_bool, matching) = self.modifiers(op)?;
            let rhs = self.expr(prec + 1)?;
            lhs = Expr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs), return_bool, matching };
        }
        Ok(lhs)
    }

    fn modifiers(&mut self, op: BinOp) -> Result<(bool, VectorMatching), ParseError> {
        let mut return_bool = false;
        if self.ident_is("bool") {
            if !op.is_comparison() {
                return Err(self.error("bool modifier can only be used on comparison operators"));
            }
            self.next();
            return_bool = true;
        }
        let mut matching = VectorMatching::default();
        if self.ident_is("on") || self.ident_is("ignoring") {
            matching.on = self.ident_is("on");
            self.next();
            matching.labels = self.label_list()?;
            if self.ident_is("group_left") || self.ident_is("group_right") {
                return Err(self.error("not supported by m3s: group_left/group_right"));
            }
        }
        Ok((return_bool, matching))
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        match self.peek() {
            Tok::Op("-") => {
                self.next();
                let operand = self.unary()?;
                Ok(match operand {
                    Expr::Number(n) => Expr::Number(-n),
                    other => Expr::Neg(Box::new(other)),
                })
            }
            Tok::Op("+") => {
                self.next();
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Expr, ParseError> {
        let base = self.postfix()?;
        if self.peek() == &Tok::Op("^") {
            self.next();
            let (return_bool, matching) = self.modifiers(BinOp::Pow)?;
            let exponent = self.unary()?; // right-associative
            return Ok(Expr::Binary {
                op: BinOp::Pow,
                lhs: Box::new(base),
                rhs: Box::new(exponent),
                return_bool,
                matching,
            });
        }
        Ok(base)
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.primary()?;
        if self.peek() == &Tok::LBracket {
            let Expr::Selector(sel) = e else {
                return Err(self.error("not supported by m3s: subqueries (ranges apply to selectors only)"));
            };
            self.next();
            let Tok::Duration(range) = self.next() else {
                return Err(self.error("expected a duration in the range selector"));
            };
            if self.peek() == &Tok::Colon {
                return Err(self.error("not supported by m3s: subqueries"));
            }
            self.expect(Tok::RBracket, "']'")?;
            if range <= 0 {
                return Err(self.error("range must be positive"));
            }
            e = Expr::Range(sel, range);
        }
        if self.ident_is("offset") {
            self.next();
            let negative = if self.peek() == &Tok::Op("-") {
                self.next();
                true
            } else {
                false
            };
            let Tok::Duration(d) = self.next() else {
                return Err(self.error("expected a duration after offset"));
            };
            let d = if negative { -d } else { d };
            match &mut e {
                Expr::Selector(s) | Expr::Range(s, _) => s.offset = d,
                _ => return Err(self.error("offset modifier must be preceded by a selector")),
            }
        }
        if self.peek() == &Tok::At {
            return Err(self.error("not supported by m3s: the @ modifier"));
        }
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let start = self.pos();
        match self.next() {
            Tok::Number(n) => Ok(Expr::Number(n)),
            Tok::Duration(ms) => Ok(Expr::Number(ms as f64 / 1000.0)),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::LParen => {
                let e = self.expr(0)?;
                self.expect(Tok::RParen, "')'")?;
                Ok(e)
            }
            Tok::LBrace => {
                let matchers = self.matchers()?;
                if !matchers.iter().any(|m| !m.matches_empty()) {
                    return Err(ParseError::new(
                        self.src,
                        start,
                        "vector selector must contain at least one non-empty matcher",
                    ));
                }
                Ok(Expr::Selector(Selector { matchers, offset: 0 }))
            }
            Tok::Ident(name) => self.after_ident(name, start),
            Tok::Eof => Err(ParseError::new(self.src, start, "unexpected end of input")),
            other => Err(ParseError::new(self.src, start, format!("unexpected {}", describe(&other)))),
        }
    }

    fn after_ident(&mut self, name: String, start: usize) -> Result<Expr, ParseError> {
        let agg = match name.to_ascii_lowercase().as_str() {
            "sum" => Some(AggOp::Sum),
            "avg" => Some(AggOp::Avg),
            "min" => Some(AggOp::Min),
            "max" => Some(AggOp::Max),
            "count" => Some(AggOp::Count),
            "topk" => Some(AggOp::Topk),
            "bottomk" => Some(AggOp::Bottomk),
            _ => None,
        };
        let is_call = self.peek() == &Tok::LParen;
        if let Some(op) = agg
            && (is_call || self.ident_is("by") || self.ident_is("without"))
        {
            return self.aggregate(op);
        }
        if matches!(
            name.as_str(),
            "stddev" | "stdvar" | "quantile" | "count_values" | "group" | "limitk" | "limit_ratio"
        ) && (is_call || self.ident_is("by") || self.ident_is("without"))
        {
            return Err(ParseError::new(self.src, start, format!("not supported by m3s: aggregation {name}")));
        }
        if is_call {
            let Some((func, types, required)) = Func::by_name(&name) else {
                return Err(ParseError::new(self.src, start, format!("not supported by m3s: function {name:?}")));
            };
            self.next();
            let mut args = Vec::new();
            if self.peek() != &Tok::RParen {
                loop {
                    args.push(self.expr(0)?);
                    if self.peek() == &Tok::Comma {
                        self.next();
                        continue;
                    }
                    break;
                }
            }
            self.expect(Tok::RParen, "')'")?;
            if args.len() < required || args.len() > types.len() {
                return Err(ParseError::new(
                    self.src,
                    start,
                    format!("expected {required} argument(s) in call to {name:?}, got {}", args.len()),
                ));
            }
            for (arg, want) in args.iter().zip(types.iter()) {
                let got = type_of(arg);
                if got != *want {
                    return Err(ParseError::new(
                        self.src,
                        start,
                        format!(
                            "expected type {} in call to function {name:?}, got {}",
                            type_name(*want),
                            type_name(got)
                        ),
                    ));
                }
            }
            return Ok(Expr::Call(func, args));
        }
        // A metric name, maybe with matchers.
        let mut matchers = vec![Matcher::eq(NAME_LABEL, name)];
        if self.peek() == &Tok::LBrace {
            self.next();
            matchers.extend(self.matchers()?);
        }
        Ok(Expr::Selector(Selector { matchers, offset: 0 }))
    }

    fn aggregate(&mut self, op: AggOp) -> Result<Expr, ParseError> {
        let mut grouping = self.grouping()?;
        self.expect(Tok::LParen, "'(' after the aggregation")?;
        let param = if matches!(op, AggOp::Topk | AggOp::Bottomk) {
            let p = self.expr(0)?;
            self.expect(Tok::Comma, "',' after the parameter")?;
            Some(Box::new(p))
        } else {
            None
        };
        let expr = self.expr(0)?;
        self.expect(Tok::RParen, "')'")?;
        if matches!(grouping, Grouping::None) {
            grouping = self.grouping()?;
        }
        Ok(Expr::Aggregate { op, param, expr: Box::new(expr), grouping })
    }

    fn grouping(&mut self) -> Result<Grouping, ParseError> {
        if self.ident_is("by") {
            self.next();
            return Ok(Grouping::By(self.label_list()?));
        }
        if self.ident_is("without") {
            self.next();
            return Ok(Grouping::Without(self.label_list()?));
        }
        Ok(Grouping::None)
    }

    fn label_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(Tok::LParen, "'(' before the label list")?;
        let mut out = Vec::new();
        while self.peek() != &Tok::RParen {
            match self.next() {
                Tok::Ident(l) => out.push(l),
                _ => return Err(self.error("expected a label name")),
            }
            if self.peek() == &Tok::Comma {
                self.next();
            } else {
                break;
            }
        }
        self.expect(Tok::RParen, "')' after the label list")?;
        Ok(out)
    }

    fn matchers(&mut self) -> Result<Vec<Matcher>, ParseError> {
        let mut out = Vec::new();
        loop {
            if self.peek() == &Tok::RBrace {
                self.next();
                return Ok(out);
            }
            let at = self.pos();
            let Tok::Ident(name) = self.next() else {
                return Err(ParseError::new(self.src, at, "expected a label name in the matcher"));
            };
            let op = match self.next() {
                Tok::Match("=") => MatchOp::Eq,
                Tok::Match("!=") => MatchOp::Ne,
                Tok::Match("=~") => MatchOp::Re,
                Tok::Match("!~") => MatchOp::NotRe,
                _ => return Err(ParseError::new(self.src, at, format!("expected a matching operator after {name:?}"))),
            };
            let vat = self.pos();
            let Tok::Str(value) = self.next() else {
                return Err(ParseError::new(self.src, vat, "expected a quoted label value"));
            };
            let m = Matcher::new(name, op, value)
                .map_err(|e| ParseError::new(self.src, vat, format!("invalid regular expression: {e}")))?;
            out.push(m);
            match self.peek() {
                Tok::Comma => {
                    self.next();
                }
                Tok::RBrace => {}
                _ => return Err(self.error("expected ',' or '}' in the label matchers")),
            }
        }
    }

    /// The checks Prometheus makes after parsing: operand types of operators and aggregations.
    fn check_types(&self, e: &Expr) -> Result<(), ParseError> {
        let err = |m: &str| Err(ParseError::new(self.src, 0, m.to_string()));
        match e {
            Expr::Binary { op, lhs, rhs, return_bool, .. } => {
                self.check_types(lhs)?;
                self.check_types(rhs)?;
                let (l, r) = (type_of(lhs), type_of(rhs));
                if l == ArgType::Matrix
                    || r == ArgType::Matrix
                    || matches!(**lhs, Expr::Str(_))
                    || matches!(**rhs, Expr::Str(_))
                {
                    return err("binary expression must contain only scalar and instant vector types");
                }
                if op.is_set() && (l != ArgType::Vector || r != ArgType::Vector) {
                    return err("set operator not allowed in binary scalar expression");
                }
                if op.is_comparison() && l == ArgType::Scalar && r == ArgType::Scalar && !return_bool {
                    return err("comparisons between scalars must use BOOL modifier");
                }
                Ok(())
            }
            Expr::Aggregate { expr, param, .. } => {
                self.check_types(expr)?;
                if type_of(expr) != ArgType::Vector {
                    return err("expected type instant vector in aggregation expression");
                }
                if let Some(p) = param {
                    self.check_types(p)?;
                    if type_of(p) != ArgType::Scalar {
                        return err("expected type scalar in aggregation parameter");
                    }
                }
                Ok(())
            }
            Expr::Call(_, args) => args.iter().try_for_each(|a| self.check_types(a)),
            Expr::Neg(inner) => {
                self.check_types(inner)?;
                if type_of(inner) == ArgType::Matrix {
                    return err("unary expression only allowed on expressions of type scalar or instant vector");
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn type_of(e: &Expr) -> ArgType {
    match e {
        Expr::Number(_) | Expr::Str(_) => ArgType::Scalar,
        Expr::Selector(_) | Expr::Aggregate { .. } => ArgType::Vector,
        Expr::Range(..) => ArgType::Matrix,
        Expr::Call(f, _) => f.returns(),
        Expr::Binary { lhs, rhs, .. } => {
            if type_of(lhs) == ArgType::Scalar && type_of(rhs) == ArgType::Scalar {
                ArgType::Scalar
            } else {
                ArgType::Vector
            }
        }
        Expr::Neg(inner) => type_of(inner),
    }
}

fn type_name(t: ArgType) -> &'static str {
    match t {
        ArgType::Scalar => "scalar",
        ArgType::Vector => "instant vector",
        ArgType::Matrix => "range vector",
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("identifier {s:?}"),
        Tok::Number(n) => format!("number {n}"),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Duration(_) => "duration".into(),
        Tok::Op(o) | Tok::Match(o) => format!("{o:?}"),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::LBrace => "'{'".into(),
        Tok::RBrace => "'}'".into(),
        Tok::LBracket => "'['".into(),
        Tok::RBracket => "']'".into(),
        Tok::Comma => "','".into(),
        Tok::Colon => "':'".into(),
        Tok::At => "'@'".into(),
        Tok::Eof => "end of input".into(),
    }
}
