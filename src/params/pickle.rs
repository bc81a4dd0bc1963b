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
    let mut decoder = Decoder {
        c: Cursor { bytes, pos: 0 },
        stack: Vec::new(),
        memo: Memo {
            slots: Vec::new(),
            // Memo PUT/GET copy values; without a bound a small hostile pickle
            // could copy a long list again and again (memory quadratic in the
            // input, found by fuzzing). Copies may total a few times the
            // input, no more.
            copy_budget: bytes.len().saturating_mul(4).saturating_add(4096),
        },
    };
    loop {
        let offset = decoder.c.pos;
        let op = decoder.c.byte()?;
        if decoder.stack.len() > MAX_ITEMS {
            return Err(malformed("stack too deep", offset));
        }
        if let Some(names) = decoder.step(op, offset)? {
            return Ok(names);
        }
    }
}

/// The pickle machine's state between opcodes: the input, the value stack
/// and the memo.
struct Decoder<'a> {
    c: Cursor<'a>,
    stack: Vec<Value>,
    memo: Memo,
}

/// The memo's slots and what is left of the budget for copies into and out
/// of it.
struct Memo {
    slots: Vec<Option<Value>>,
    copy_budget: usize,
}

impl Memo {
    /// Stores a copy of `v` at `idx` (None: the next free slot, as MEMOIZE
    /// does). The copy is charged before it is made, and indices are capped
    /// at [`MAX_ITEMS`] so that one PUT cannot allocate without bound.
    fn copy_in(&mut self, idx: Option<usize>, v: &Value, offset: usize) -> Result<(), PickleError> {
        charge(&mut self.copy_budget, v, offset)?;
        let v = v.clone();
        let idx = idx.unwrap_or(self.slots.len());
        if idx >= MAX_ITEMS {
            return Err(malformed("memo index too large", offset));
        }
        if self.slots.len() <= idx {
            self.slots.resize(idx + 1, None);
        }
        self.slots[idx] = Some(v);
        Ok(())
    }

    /// A copy of slot `idx`, charged before it is made.
    fn copy_out(&mut self, idx: usize, offset: usize) -> Result<Value, PickleError> {
        let v = self
            .slots
            .get(idx)
            .and_then(|v| v.as_ref())
            .ok_or(malformed("GET of an unset memo slot", offset))?;
        charge(&mut self.copy_budget, v, offset)?;
        Ok(v.clone())
    }
}

/// Takes the size of a copy of `v` from `budget`: every PUT and GET copies,
/// and the budget is what keeps a small hostile pickle from copying a long
/// list again and again.
fn charge(budget: &mut usize, v: &Value, offset: usize) -> Result<(), PickleError> {
    let size = match v {
        Value::Mark => 1,
        Value::Str(s) => s.len() + 1,
        Value::List(l) => l.iter().map(|s| s.len() + 1).sum::<usize>() + 1,
    };
    *budget = budget.checked_sub(size).ok_or(malformed(
        "memo copies exceed a few times the input size",
        offset,
    ))?;
    Ok(())
}

/// The protocol-0 decimal index argument of PUT and GET (`problem` names
/// which, for the error).
fn decimal_index(line: &[u8], problem: &'static str, offset: usize) -> Result<usize, PickleError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .ok_or(malformed(problem, offset))
}

/// The values from the topmost MARK up, in order, with the MARK removed.
fn pop_mark(stack: &mut Vec<Value>, offset: usize) -> Result<Vec<Value>, PickleError> {
    let at = stack
        .iter()
        .rposition(|v| matches!(v, Value::Mark))
        .ok_or(malformed("no MARK on the stack", offset))?;
    let items = stack.split_off(at + 1);
    stack.pop();
    Ok(items)
}

/// The strings of `items`: a list of anything else is not what the params
/// table's column names can be.
fn strings(items: Vec<Value>, offset: usize) -> Result<Vec<String>, PickleError> {
    items
        .into_iter()
        .map(|v| match v {
            Value::Str(s) => Ok(s),
            _ => Err(malformed("list item is not a string", offset)),
        })
        .collect()
}

impl Decoder<'_> {
    /// Runs opcode `op` (read at `offset`, its arguments still in the
    /// cursor): the decoded names at STOP, None to go on.
    fn step(&mut self, op: u8, offset: usize) -> Result<Option<Vec<String>>, PickleError> {
        match op {
            0x80 => {
                self.c.byte()?; // PROTO n
            }
            0x95 => {
                self.c.take(8)?; // FRAME length: frames are only a buffering hint
            }
            b'.' => return self.stop(offset).map(Some),
            b'(' => self.stack.push(Value::Mark),
            b']' | b')' => self.stack.push(Value::List(Vec::new())),
            b'l' | b't' => {
                let items = pop_mark(&mut self.stack, offset)?;
                self.stack.push(Value::List(strings(items, offset)?));
            }
            0x85..=0x87 => self.tuple_n(op, offset)?,
            b'a' => self.append(offset)?,
            b'e' => self.appends(offset)?,
            b'V' | b'S' | b'X' | 0x8c | 0x8d | b'T' | b'B' | b'U' | b'C' => {
                let s = self.string_arg(op, offset)?;
                self.stack.push(Value::Str(s));
            }
            b'p' | b'q' | b'r' | 0x94 => self.memo_put(op, offset)?,
            b'g' | b'h' | b'j' => self.memo_get(op, offset)?,
            other => {
                return Err(PickleError::Unsupported {
                    opcode: other,
                    offset,
                })
            }
        }
        Ok(None)
    }

    /// STOP: the pickle must leave exactly one list on the stack.
    fn stop(&mut self, offset: usize) -> Result<Vec<String>, PickleError> {
        match self.stack.pop() {
            Some(Value::List(v)) if self.stack.is_empty() => Ok(v),
            Some(Value::List(_)) => Err(malformed("values left on the stack at STOP", offset)),
            _ => Err(malformed("the pickle is not a list of strings", offset)),
        }
    }

    /// TUPLE1..TUPLE3 (0x85..=0x87): the top 1 to 3 values become one tuple,
    /// kept as a list.
    fn tuple_n(&mut self, op: u8, offset: usize) -> Result<(), PickleError> {
        let n = (op - 0x84) as usize;
        if self.stack.len() < n {
            return Err(malformed("TUPLE on a short stack", offset));
        }
        let items = self.stack.split_off(self.stack.len() - n);
        self.stack.push(Value::List(strings(items, offset)?));
        Ok(())
    }

    /// APPEND: the top string goes to the end of the list below it.
    fn append(&mut self, offset: usize) -> Result<(), PickleError> {
        let item = self
            .stack
            .pop()
            .ok_or(malformed("APPEND on an empty stack", offset))?;
        let Value::Str(s) = item else {
            return Err(malformed("list item is not a string", offset));
        };
        match self.stack.last_mut() {
            Some(Value::List(v)) => v.push(s),
            _ => return Err(malformed("APPEND to a non-list", offset)),
        }
        Ok(())
    }

    /// APPENDS: the strings above the topmost MARK go to the end of the
    /// list below it, which stays within [`MAX_ITEMS`].
    fn appends(&mut self, offset: usize) -> Result<(), PickleError> {
        let items = strings(pop_mark(&mut self.stack, offset)?, offset)?;
        match self.stack.last_mut() {
            Some(Value::List(v)) => {
                if v.len() + items.len() > MAX_ITEMS {
                    return Err(malformed("list too long", offset));
                }
                v.extend(items)
            }
            _ => return Err(malformed("APPENDS to a non-list", offset)),
        }
        Ok(())
    }

    /// The argument of a string push (`op` one of the string opcodes
    /// [`Self::step`] routes here): text (protocol 0's escapes, UTF-8) or
    /// bytes taken as Latin-1.
    fn string_arg(&mut self, op: u8, offset: usize) -> Result<String, PickleError> {
        let c = &mut self.c;
        match op {
            b'V' => raw_unicode_escape(c.line()?, offset),
            b'S' => quoted_string(c.line()?, offset),
            b'X' => {
                let n = c.len_u32()?;
                utf8(c.take(n)?, offset)
            }
            0x8c => {
                let n = c.byte()? as usize;
                utf8(c.take(n)?, offset)
            }
            0x8d => {
                let n = c.len_u64()?;
                utf8(c.take(n)?, offset)
            }
            b'T' | b'B' => {
                let n = c.len_u32()?;
                Ok(latin1(c.take(n)?))
            }
            // SHORT_BINSTRING and SHORT_BINBYTES (b'U', b'C'): the last
            // string opcodes step routes here.
            _ => {
                let n = c.byte()? as usize;
                Ok(latin1(c.take(n)?))
            }
        }
    }

    /// PUT, BINPUT, LONG_BINPUT and MEMOIZE (`op`): a copy of the top of the
    /// stack into the memo.
    fn memo_put(&mut self, op: u8, offset: usize) -> Result<(), PickleError> {
        let (idx, empty_stack) = match op {
            b'p' => (
                Some(decimal_index(self.c.line()?, "bad PUT index", offset)?),
                "PUT on an empty stack",
            ),
            b'q' => (Some(self.c.byte()? as usize), "PUT on an empty stack"),
            b'r' => (Some(self.c.len_u32()?), "PUT on an empty stack"),
            // MEMOIZE: the next free slot.
            _ => (None, "MEMOIZE on an empty stack"),
        };
        let top = self.stack.last().ok_or(malformed(empty_stack, offset))?;
        self.memo.copy_in(idx, top, offset)
    }

    /// GET, BINGET and LONG_BINGET (`op`): a copy of a memo slot onto the
    /// stack.
    fn memo_get(&mut self, op: u8, offset: usize) -> Result<(), PickleError> {
        let idx = match op {
            b'g' => decimal_index(self.c.line()?, "bad GET index", offset)?,
            b'h' => self.c.byte()? as usize,
            _ => self.c.len_u32()?,
        };
        let v = self.memo.copy_out(idx, offset)?;
        // Memoised lists are aliased in Python; we only ever GET strings in practice.
        self.stack.push(v);
        Ok(())
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
