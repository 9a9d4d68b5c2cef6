//! The DNS wire format (RFC 1035), as much as a stub resolver's questions
//! need: one question in, A and SRV answers out. Plain functions on bytes, no
//! IO; every malformed message is an error, never a panic (fuzz target `dns_query`).

use std::net::Ipv4Addr;

pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
pub const TYPE_ANY: u16 = 255;
pub const CLASS_IN: u16 = 1;

pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_NOTIMP: u8 = 4;

const HEADER: usize = 12;
const MAX_NAME: usize = 255;

/// A query's header and its one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    pub flags: u16,
    /// Lowercase, dot-separated, without the trailing dot (`web.demo`).
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    /// Where the question ends in the message: answers repeat it verbatim.
    question_end: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("shorter than its header says")]
    Short,
    #[error("a response, not a query")]
    NotAQuery,
    #[error("opcode {0}: only standard queries are answered")]
    Opcode(u8),
    #[error("{0} questions: one is answered")]
    QuestionCount(u16),
    #[error("the question's name: {0}")]
    Name(&'static str),
}

impl WireError {
    /// The response code this error earns.
    pub fn rcode(&self) -> u8 {
        match self {
            WireError::Opcode(_) => RCODE_NOTIMP,
            _ => RCODE_FORMERR,
        }
    }
}

/// One answer record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    A(Ipv4Addr),
    Srv { priority: u16, weight: u16, port: u16, target: String },
}

pub fn parse_query(msg: &[u8]) -> Result<Query, WireError> {
    if msg.len() < HEADER {
        return Err(WireError::Short);
    }
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    if flags & 0x8000 != 0 {
        return Err(WireError::NotAQuery);
    }
    let opcode = ((flags >> 11) & 0xf) as u8;
    if opcode != 0 {
        return Err(WireError::Opcode(opcode));
    }
    let qdcount = u16::from_be_bytes([msg[4], msg[5]]);
    if qdcount != 1 {
        return Err(WireError::QuestionCount(qdcount));
    }
    let mut at = HEADER;
    let mut name = String::new();
    loop {
        let len = *msg.get(at).ok_or(WireError::Short)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        if len & 0xc0 != 0 {
            // Compression pointers point back into the message: a question has
            // nothing before it to point to.
            return Err(WireError::Name("a compressed or extended label"));
        }
        let label = msg.get(at..at + len).ok_or(WireError::Short)?;
        at += len;
        if !name.is_empty() {
            name.push('.');
        }
        for &b in label {
            if b == b'.' || !b.is_ascii_graphic() {
                return Err(WireError::Name("a label byte that is not a printable ASCII character"));
            }
            name.push(b.to_ascii_lowercase() as char);
        }
        if name.len() > MAX_NAME {
            return Err(WireError::Name("longer than 255 bytes"));
        }
    }
    let fixed = msg.get(at..at + 4).ok_or(WireError::Short)?;
    let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
    Ok(Query { id, flags, name, qtype, qclass, question_end: at + 4 })
}

/// The response to `query` (parsed from `msg`): its question repeated, the
/// records as answers, authoritative, recursion available.
pub fn response(query: &Query, msg: &[u8], rcode: u8, records: &[Record], ttl: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(query.question_end + records.len() * 32);
    out.extend_from_slice(&query.id.to_be_bytes());
    let flags = 0x8000 | 0x0400 | (query.flags & 0x0100) | 0x0080 | u16::from(rcode & 0xf);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(records.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&msg[HEADER..query.question_end]);
    for record in records {
        // The answer's name points at the question's (offset 12).
        out.extend_from_slice(&[0xc0, HEADER as u8]);
        let (kind, rdata) = match record {
            Record::A(ip) => (TYPE_A, ip.octets().to_vec()),
            Record::Srv { priority, weight, port, target } => {
                let mut rdata = Vec::with_capacity(8 + target.len());
                rdata.extend_from_slice(&priority.to_be_bytes());
                rdata.extend_from_slice(&weight.to_be_bytes());
                rdata.extend_from_slice(&port.to_be_bytes());
                encode_name(target, &mut rdata);
                (TYPE_SRV, rdata)
            }
        };
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    out
}

/// An error response to a message that could not be answered, when it has
/// at least a header to reply to (its id and recursion flag are kept).
pub fn error_response(msg: &[u8], rcode: u8) -> Option<Vec<u8>> {
    if msg.len() < HEADER || msg[2] & 0x80 != 0 {
        return None;
    }
    let mut out = msg[..HEADER].to_vec();
    let flags = 0x8000 | (u16::from_be_bytes([msg[2], msg[3]]) & 0x7900) | 0x0080 | u16::from(rcode & 0xf);
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    out[4..12].fill(0);
    Some(out)
}

/// A name as labels; labels longer than 63 bytes are cut (names here are ours).
fn encode_name(name: &str, out: &mut Vec<u8>) {
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        let bytes = &label.as_bytes()[..label.len().min(63)];
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    out.push(0);
}

/// A query for `name` (for clients and tests).
pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + name.len() + 6);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    encode_name(name, &mut out);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

/// The rcode and A addresses of a response (for clients and tests).
pub fn parse_a_answers(msg: &[u8]) -> Result<(u8, Vec<Ipv4Addr>), WireError> {
    if msg.len() < HEADER {
        return Err(WireError::Short);
    }
    let rcode = msg[3] & 0xf;
    let ancount = u16::from_be_bytes([msg[6], msg[7]]);
    let mut at = HEADER;
    at = skip_name(msg, at)? + 4;
    let mut out = Vec::new();
    for _ in 0..ancount {
        at = skip_name(msg, at)?;
        let fixed = msg.get(at..at + 10).ok_or(WireError::Short)?;
        let kind = u16::from_be_bytes([fixed[0], fixed[1]]);
        let len = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        at += 10;
        let rdata = msg.get(at..at + len).ok_or(WireError::Short)?;
        if kind == TYPE_A && len == 4 {
            out.push(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]));
        }
        at += len;
    }
    Ok((rcode, out))
}

fn skip_name(msg: &[u8], mut at: usize) -> Result<usize, WireError> {
    loop {
        let len = *msg.get(at).ok_or(WireError::Short)?;
        if len & 0xc0 == 0xc0 {
            return Ok(at + 2);
        }
        at += 1 + len as usize;
        if len == 0 {
            return Ok(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_round_trips_to_an_answer_with_its_question_and_id() {
        let msg = query(0xbeef, "Web.Demo.", TYPE_A);
        let q = parse_query(&msg).unwrap();
        assert_eq!((q.id, q.name.as_str(), q.qtype, q.qclass), (0xbeef, "web.demo", TYPE_A, CLASS_IN));
        let ips = [Ipv4Addr::new(10, 90, 0, 2), Ipv4Addr::new(10, 90, 0, 3)];
        let reply = response(&q, &msg, 0, &ips.map(Record::A), 5);
        assert_eq!(&reply[..2], &[0xbe, 0xef]);
        assert_eq!(reply[2] & 0x80, 0x80, "QR");
        assert_eq!(reply[2] & 0x01, 0x01, "RD copied");
        assert_eq!(parse_a_answers(&reply).unwrap(), (0, ips.to_vec()));
    }

    #[test]
    fn srv_answers_carry_port_and_target() {
        let msg = query(1, "_web._tcp.demo.mesos", TYPE_SRV);
        let q = parse_query(&msg).unwrap();
        let reply = response(
            &q,
            &msg,
            0,
            &[Record::Srv { priority: 0, weight: 0, port: 31005, target: "web.demo.mesos".into() }],
            60,
        );
        let tail = &reply[reply.len() - (6 + 16)..];
        assert_eq!(&tail[4..6], &31005u16.to_be_bytes());
        assert_eq!(&tail[6..], b"\x03web\x04demo\x05mesos\x00");
    }

    #[test]
    fn malformed_messages_are_errors_with_their_rcode() {
        assert_eq!(parse_query(&[0; 5]), Err(WireError::Short));
        let mut msg = query(7, "a", TYPE_A);
        msg[5] = 2;
        assert_eq!(parse_query(&msg), Err(WireError::QuestionCount(2)));
        let mut msg = query(7, "a", TYPE_A);
        msg[2] |= 0x10; // opcode 2, STATUS
        assert_eq!(parse_query(&msg).unwrap_err().rcode(), RCODE_NOTIMP);
        let mut msg = query(7, "abc", TYPE_A);
        msg[12] = 0xc0;
        assert!(matches!(parse_query(&msg), Err(WireError::Name(_))));
        let truncated = &query(7, "abc", TYPE_A)[..15];
        assert_eq!(parse_query(truncated), Err(WireError::Short));
        let reply = error_response(&query(9, "x", TYPE_A), RCODE_FORMERR).unwrap();
        assert_eq!((reply[1], reply[3] & 0xf), (9, RCODE_FORMERR));
        assert!(error_response(&reply, RCODE_FORMERR).is_none(), "never answer a response");
    }
}
