// Token text as specviz shows it, in the browser: pure functions, no page and no tokenizer, so Node
// tests them (tests/js/tokentext.test.mjs) against the Python side's own words.

const WS = { " ": "␣", "\n": "⏎", "\t": "⇥", "\r": "↵" };
// control, format (bidi overrides, zero-width), separators, lone surrogates: shown as \uXXXX
const HIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;
const END_TOKEN = /^(?:<\|(?:im_end|endoftext|end_of_text|eot_id|eom_id|end)\|>|<\/s>|<eos>|<end_of_turn>)$/;

/**
 * Token text with whitespace and hidden characters made visible (specviz/figures/text.py `visible`):
 * " the\n" → "␣the⏎"; a bidi override cannot reorder the text around it.
 * @param {string} text
 */
export function visible(text) {
  if (text === "") return "∅";
  if (END_TOKEN.test(text)) return "■";
  let out = "";
  for (const ch of text) {
    if (ch in WS) out += WS[ch];
    else if (HIDDEN.test(ch)) out += escapeHidden(ch);
    else out += ch;
  }
  return out;
}

function escapeHidden(ch) {
  const cp = ch.codePointAt(0);
  return cp <= 0xffff ? `\\u${cp.toString(16).padStart(4, "0")}` : `\\U${cp.toString(16).padStart(8, "0")}`;
}

/**
 * Free text (the output) as plain characters (text.py `literal`): newlines and tabs stay, every other
 * control, bidi or format character becomes \uXXXX.
 * @param {string} text
 */
export function literal(text) {
  let out = "";
  for (const ch of text) out += ch !== "\n" && ch !== "\t" && HIDDEN.test(ch) ? escapeHidden(ch) : ch;
  return out;
}

// GPT-2's byte-level alphabet (bytes_to_unicode): which byte each printable character stands for.
export const BYTE_OF = (() => {
  const keep = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const map = new Map(keep.map((b) => [String.fromCharCode(b), b]));
  let n = 0;
  for (let b = 0; b < 256; b++) if (!keep.includes(b)) map.set(String.fromCharCode(256 + n++), b);
  return map;
})();

/**
 * Bytes as text: whole characters as themselves, bytes that are only part of one as "‹F0 9F›"
 * (specviz/trace/schema.py `byte_label`).
 * @param {Uint8Array} bytes
 */
export function byteLabel(bytes) {
  let out = "";
  let i = 0;
  const strict = new TextDecoder("utf-8", { fatal: true });
  while (i < bytes.length) {
    // the longest whole character starting here (UTF-8 characters are 1 to 4 bytes)
    let took = 0;
    for (let n = Math.min(4, bytes.length - i); n >= 1 && !took; n--) {
      try {
        out += strict.decode(bytes.subarray(i, i + n));
        took = n;
      } catch {
        // not a whole character: try a shorter one
      }
    }
    if (took) {
      i += took;
      continue;
    }
    const partial = [];
    while (i < bytes.length) {
      let whole = false;
      for (let n = 1; n <= Math.min(4, bytes.length - i) && !whole; n++) {
        try {
          strict.decode(bytes.subarray(i, i + n));
          whole = true;
        } catch {
          // still partial
        }
      }
      if (whole) break;
      partial.push(bytes[i].toString(16).toUpperCase().padStart(2, "0"));
      i++;
    }
    out += `‹${partial.join(" ")}›`;
  }
  return out;
}

