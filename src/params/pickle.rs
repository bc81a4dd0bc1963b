//! A decoder for the one kind of pickle HDF5 params tables carry: a list (or
//! tuple) of strings.
//!
//! pandas `to_hdf(format="table")` stores the column names of each
//! `values_block_K` as the PyTables attribute `values_block_K_kind`, a pickle
//! of a list of strings (protocol 0 in the files pfsspec wrote; newer stacks
//! write protocol 2+). No crate decodes pickles without a Python runtime
//! except `serde-pickle`, which pulls a general object model for what is a
//! list of names; this hand-written subset is ~150 lines, bounded in
//! allocation, and fuzzed (`fuzz/fuzz_targets/pickle_names.rs`).
//!
//! Supported opcodes: PROTO, FRAME, STOP, MARK, EMPTY_LIST, LIST, EMPTY_TUPLE,
//! TUPLE, TUPLE1-3, APPEND, APPENDS, string pushes (UNICODE, STRING,
//! BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, BINSTRING, SHORT_BINSTRING,
//! SHORT_BINBYTES, BINBYTES), and memo operations (PUT, BINPUT, LONG_BINPUT,
//! MEMOIZE, GET, BINGET, LONG_BINGET). Anything else is an error, never a panic.

use crate::error::PickleError;

/// The most values the decoder keeps on its stack or memo: a list of column
/// names has tens of entries; this bounds allocation on hostile input.
const MAX_ITEMS: usize = 1 << 16;

#[derive(Debug, Clone)]
enum Value {
    Mark,
    Str(String),
    List(Vec<String>),
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(PickleError::Truncated {
                offset: self.bytes.len(),
            }),
        }
    }
    fn byte(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }
    fn line(&mut self) -> Result<&'a [u8], PickleError> {
        let rest = &self.bytes[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.pos += i + 1;
                Ok(&rest[..i])
            }
            None => Err(PickleError::Truncated {
                offset: self.bytes.len(),
            }),
        }
    }
    fn len_u32(&mut self) -> Result<usize, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn len_u64(&mut self) -> Result<usize, PickleError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        usize::try_from(u64::from_le_bytes(a)).map_err(|_| PickleError::Truncated {
            offset: self.bytes.len(),
        })
    }
}

fn malformed(problem: &'static str, offset: usize) -> PickleError {
    PickleError::Malformed { problem, offset }
}

/// Decodes protocol-0 `raw-unicode-escape` text (`\uXXXX`, `\UXXXXXXXX`, other
/// bytes as Latin-1).
fn raw_unicode_escape(bytes: &[u8], offset: usize) -> Result<String, PickleError> {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 1 < bytes.len()
            && (bytes[i + 1] == b'u' || bytes[i + 1] == b'U')
        {
            let n = if bytes[i + 1] == b'u' { 4 } else { 8 };
            let hex = bytes
                .get(i + 2..i + 2 + n)
                .ok_or(malformed("short \\u escape", offset))?;
            let hex = std::str::from_utf8(hex).map_err(|_| malformed("bad \\u escape", offset))?;
            let cp =
                u32::from_str_radix(hex, 16).map_err(|_| malformed("bad \\u escape", offset))?;
            out.push(char::from_u32(cp).ok_or(malformed("invalid code point", offset))?);
            i += 2 + n;
        } else {
            out.push(bytes[i] as char);
            i += 1;
        }
    }
    Ok(out)
}

/// Decodes a protocol-0 `STRING` argument: a Python repr in single or double quotes.
fn quoted_string(line: &[u8], offset: usize) -> Result<String, PickleError> {
    let q = *line.first().ok_or(malformed("empty STRING", offset))?;
    if line.len() < 2 || (q != b'\'' && q != b'"') || line[line.len() - 1] != q {
        return Err(malformed("STRING not quoted", offset));
    }
    let body = &line[1..line.len() - 1];
    let mut out = String::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b == b'\\' && i + 1 < body.len() {
            let e = body[i + 1];
            i += 2;
            match e {
                b'n' => out.push('\n'),
                b't' => out.push('\t'),
                b'r' => out.push('\r'),
                b'\\' => out.push('\\'),
                b'\'' => out.push('\''),
                b'"' => out.push('"'),
                b'x' => {
                    let hex = body
                        .get(i..i + 2)
                        .ok_or(malformed("short \\x escape", offset))?;
                    let hex = std::str::from_utf8(hex)
                        .map_err(|_| malformed("bad \\x escape", offset))?;
                    let v = u8::from_str_radix(hex, 16)
                        .map_err(|_| malformed("bad \\x escape", offset))?;
                    out.push(v as char);
                    i += 2;
                }
                other => {
                    out.push('\\');
                    out.push(other as char);
                }
            }
        } else {
            out.push(b as char);
            i += 1;
        }
    }
    Ok(out)
}

fn utf8(bytes: &[u8], offset: usize) -> Result<String, PickleError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed("string is not UTF-8", offset))
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

/// Decodes a pickle of a list or tuple of strings (or bytes) into the strings.
///
/// Never panics; allocation is bounded by the input length and a fixed item cap.
pub fn decode_string_list(bytes: &[u8]) -> Result<Vec<String>, PickleError> {
    let mut c = Cursor { bytes, pos: 0 };
    let mut stack: Vec<Value> = Vec::new();
    let mut memo: Vec<Option<Value>> = Vec::new();
    // Memo PUT/GET copy values; without a bound a small hostile pickle could
    // copy a long list again and again (memory quadratic in the input, found
    // by fuzzing). Copies may total a few times the input, no more.
    let mut copy_budget = bytes.len().saturating_mul(4).saturating_add(4096);
    let mut charge = |v: &Value, offset: usize| -> Result<(), PickleError> {
        let size = match v {
            Value::Mark => 1,
            Value::Str(s) => s.len() + 1,
            Value::List(l) => l.iter().map(|s| s.len() + 1).sum::<usize>() + 1,
        };
        copy_budget = copy_budget.checked_sub(size).ok_or(malformed(
            "memo copies exceed a few times the input size",
            offset,
        ))?;
        Ok(())
    };

    fn pop_mark(stack: &mut Vec<Value>, offset: usize) -> Result<Vec<Value>, PickleError> {
        let at = stack
            .iter()
            .rposition(|v| matches!(v, Value::Mark))
            .ok_or(malformed("no MARK on the stack", offset))?;
        let items = stack.split_off(at + 1);
        stack.pop();
        Ok(items)
    }
    fn strings(items: Vec<Value>, offset: usize) -> Result<Vec<String>, PickleError> {
        items
            .into_iter()
            .map(|v| match v {
                Value::Str(s) => Ok(s),
                _ => Err(malformed("list item is not a string", offset)),
            })
            .collect()
    }
    fn memo_put(
        memo: &mut Vec<Option<Value>>,
        idx: usize,
        v: Value,
        offset: usize,
    ) -> Result<(), PickleError> {
        if idx >= MAX_ITEMS {
            return Err(malformed("memo index too large", offset));
        }
        if memo.len() <= idx {
            memo.resize(idx + 1, None);
        }
        memo[idx] = Some(v);
        Ok(())
    }

    loop {
        let offset = c.pos;
        let op = c.byte()?;
        if stack.len() > MAX_ITEMS {
            return Err(malformed("stack too deep", offset));
        }
        match op {
            0x80 => {
                c.byte()?; // PROTO n
            }
            0x95 => {
                c.take(8)?; // FRAME length: frames are only a buffering hint
            }
            b'.' => {
                // STOP
                return match stack.pop() {
                    Some(Value::List(v)) if stack.is_empty() => Ok(v),
                    Some(Value::List(_)) => {
                        Err(malformed("values left on the stack at STOP", offset))
                    }
                    _ => Err(malformed("the pickle is not a list of strings", offset)),
                };
            }
            b'(' => stack.push(Value::Mark),
            b']' | b')' => stack.push(Value::List(Vec::new())),
            b'l' | b't' => {
                let items = pop_mark(&mut stack, offset)?;
                stack.push(Value::List(strings(items, offset)?));
            }
            0x85..=0x87 => {
                // TUPLE1..TUPLE3
                let n = (op - 0x84) as usize;
                if stack.len() < n {
                    return Err(malformed("TUPLE on a short stack", offset));
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Value::List(strings(items, offset)?));
            }
            b'a' => {
                let item = stack
                    .pop()
                    .ok_or(malformed("APPEND on an empty stack", offset))?;
                let Value::Str(s) = item else {
                    return Err(malformed("list item is not a string", offset));
                };
                match stack.last_mut() {
                    Some(Value::List(v)) => v.push(s),
                    _ => return Err(malformed("APPEND to a non-list", offset)),
                }
            }
            b'e' => {
                let items = strings(pop_mark(&mut stack, offset)?, offset)?;
                match stack.last_mut() {
                    Some(Value::List(v)) => {
                        if v.len() + items.len() > MAX_ITEMS {
                            return Err(malformed("list too long", offset));
                        }
                        v.extend(items)
                    }
                    _ => return Err(malformed("APPENDS to a non-list", offset)),
                }
            }
            b'V' => {
                let line = c.line()?;
                stack.push(Value::Str(raw_unicode_escape(line, offset)?));
            }
            b'S' => {
                let line = c.line()?;
                stack.push(Value::Str(quoted_string(line, offset)?));
            }
            b'X' => {
                let n = c.len_u32()?;
                stack.push(Value::Str(utf8(c.take(n)?, offset)?));
            }
            0x8c => {
                let n = c.byte()? as usize;
                stack.push(Value::Str(utf8(c.take(n)?, offset)?));
            }
            0x8d => {
                let n = c.len_u64()?;
                stack.push(Value::Str(utf8(c.take(n)?, offset)?));
            }
            b'T' | b'B' => {
                let n = c.len_u32()?;
                stack.push(Value::Str(latin1(c.take(n)?)));
            }
            b'U' | b'C' => {
                let n = c.byte()? as usize;
                stack.push(Value::Str(latin1(c.take(n)?)));
            }
            b'p' => {
                let line = c.line()?;
                let idx = std::str::from_utf8(line)
                    .ok()
                    .and_then(|s| s.trim().parse::<usize>().ok())
                    .ok_or(malformed("bad PUT index", offset))?;
                let top = stack
                    .last()
                    .ok_or(malformed("PUT on an empty stack", offset))?;
                charge(top, offset)?;
                let top = top.clone();
                memo_put(&mut memo, idx, top, offset)?;
            }
            b'q' | b'r' => {
                let idx = if op == b'q' {
                    c.byte()? as usize
                } else {
                    c.len_u32()?
                };
                let top = stack
                    .last()
                    .ok_or(malformed("PUT on an empty stack", offset))?;
                charge(top, offset)?;
                let top = top.clone();
                memo_put(&mut memo, idx, top, offset)?;
            }
            0x94 => {
                let top = stack
                    .last()
                    .ok_or(malformed("MEMOIZE on an empty stack", offset))?;
                charge(top, offset)?;
                let top = top.clone();
                let idx = memo.len();
                memo_put(&mut memo, idx, top, offset)?;
            }
            b'g' | b'h' | b'j' => {
                let idx = match op {
                    b'g' => std::str::from_utf8(c.line()?)
                        .ok()
                        .and_then(|s| s.trim().parse::<usize>().ok())
                        .ok_or(malformed("bad GET index", offset))?,
                    b'h' => c.byte()? as usize,
                    _ => c.len_u32()?,
                };
                let v = memo
                    .get(idx)
                    .and_then(|v| v.as_ref())
                    .ok_or(malformed("GET of an unset memo slot", offset))?;
                charge(v, offset)?;
                let v = v.clone();
                // Memoised lists are aliased in Python; we only ever GET strings in practice.
                stack.push(v);
            }
            other => {
                return Err(PickleError::Unsupported {
                    opcode: other,
                    offset,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol0_list_of_unicode() {
        // pickle.dumps(["T_eff", "M_H", "log_g"], 0)
        let p = b"(lp0\nVT_eff\np1\naVM_H\np2\naVlog_g\np3\na.";
        assert_eq!(
            decode_string_list(p).unwrap(),
            vec!["T_eff", "M_H", "log_g"]
        );
    }

    #[test]
    fn protocol0_python2_strings() {
        // Python 2: pickle.dumps(['a', "it's"], 0)
        let p = b"(lp0\nS'a'\np1\naS\"it's\"\np2\na.";
        assert_eq!(decode_string_list(p).unwrap(), vec!["a", "it's"]);
    }

    #[test]
    fn protocol4_list_with_frame_and_memoize() {
        // pickle.dumps(["T_eff", "M_H"], 4)
        let p =
            b"\x80\x04\x95\x13\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x05T_eff\x94\x8c\x03M_H\x94e.";
        assert_eq!(decode_string_list(p).unwrap(), vec!["T_eff", "M_H"]);
    }

    #[test]
    fn protocol2_binunicode_and_tuple() {
        // pickle.dumps(("ab",), 2)
        let p = b"\x80\x02X\x02\x00\x00\x00abq\x00\x85q\x01.";
        assert_eq!(decode_string_list(p).unwrap(), vec!["ab"]);
    }

    #[test]
    fn unicode_escapes() {
        let p = b"(lp0\nV\\u00c5ngstr\\u00f6m\np1\na.";
        assert_eq!(decode_string_list(p).unwrap(), vec!["Ångström"]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for p in [
            &b""[..],
            b".",
            b"(",
            b"(l",
            b"X\xff\xff\xff\xff",
            b"\x95",
            b"a",
            b"e",
            b"]V\n",
            b"]Vx\na",
        ] {
            assert!(decode_string_list(p).is_err(), "{p:?}");
        }
        assert!(matches!(
            decode_string_list(b"I1\n."),
            Err(PickleError::Unsupported { opcode: b'I', .. })
        ));
    }
}

#[cfg(test)]
mod memo_budget {
    use super::*;

    /// Regression (fuzzing): repeated GETs of a memoised long list made
    /// memory grow with the square of the input.
    #[test]
    fn repeated_memo_copies_are_bounded() {
        let mut p = b"(lp0\n".to_vec();
        for _ in 0..2000 {
            p.extend_from_slice(b"Vaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\na");
        }
        p.extend_from_slice(b"p1\n");
        for _ in 0..2000 {
            p.extend_from_slice(b"g1\n");
        }
        p.push(b'.');
        let r = decode_string_list(&p);
        assert!(matches!(r, Err(PickleError::Malformed { .. })), "{r:?}");
    }
}
