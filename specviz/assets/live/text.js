// The evaluation model's tokenizer in the browser: tokenizer.json read by Hugging Face's
// tokenizers.js, the chat template rendered by their Jinja, and token text as specviz's Python side
// shows it (specviz/models/lm.py `token_text`): a token that holds only part of a character (half an
// emoji) is labelled by its bytes, "‹F0 9F›", never shown as a replacement character.

import { Tokenizer } from "./vendor/tokenizers.min.mjs";
import { Template } from "./vendor/jinja.js";
import { BYTE_OF, byteLabel } from "./tokentext.js";

/** Prompts longer than this many tokens are refused: the prefill would take a laptop too long. */
export const MAX_PROMPT_TOKENS = 1024;
/** Longer prompts are refused before tokenizing (a pasted book would keep the tokenizer busy). */
export const MAX_PROMPT_CHARS = 20_000;

// Control characters other than tab and newline: removed from a prompt, and said so.
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g;

/**
 * The tokenizer of an exported folder.
 * @param {string} base  URL of the folder holding tokenizer/ (ends with "/")
 * @param {{chat_template?: string, eos_token_ids: number[]}} manifest
 */
export async function loadTokenizer(base, manifest) {
  const get = async (name) => {
    const res = await fetch(new URL(`tokenizer/${name}`, base));
    if (!res.ok) throw new Error(`tokenizer/${name}: HTTP ${res.status}`);
    return res.json();
  };
  const [json, config] = await Promise.all([get("tokenizer.json"), get("tokenizer_config.json")]);
  const tok = new Tokenizer(json, config);
  const source = manifest.chat_template ?? config.chat_template ?? null;
  const template = source ? new Template(source) : null;
  const special = new Map([...tok.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id, t]) => [id, t.content]));
  const memo = new Map();

  /** The token's bytes where its text alone is not whole UTF-8, else null (lm.py `token_bytes`). */
  const tokenBytes = (id) => {
    if (!tok.decode([id], { skip_special_tokens: false }).includes("\ufffd")) return null;
    const piece = tok.id_to_token(id);
    if (typeof piece !== "string") return null;
    const hex = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece); // SentencePiece byte fallback
    if (hex) return new Uint8Array([parseInt(hex[1], 16)]);
    if ([...piece].every((ch) => BYTE_OF.has(ch))) return Uint8Array.from([...piece], (ch) => BYTE_OF.get(ch));
    return null;
  };

  return {
    special,
    tokenBytes,
    /** The token's text, or its bytes labelled where it is part of a character. */
    tokenText(id) {
      let text = memo.get(id);
      if (text === undefined) {
        const b = tokenBytes(id);
        text = b ? byteLabel(b) : tok.decode([id], { skip_special_tokens: false });
        memo.set(id, text);
      }
      return text;
    },
    /** Ids → text, exact across characters split over tokens. */
    decode: (ids) => tok.decode(ids, { skip_special_tokens: false }),
    /**
     * The prompt as the Python side encodes it (lm.py `encode`): the user's message in the chat
     * template with the assistant's turn opened. Control characters are removed first.
     * @param {string} prompt
     * @returns {{ids: number[], notes: string[], error: string|null}}
     */
    encodePrompt(prompt) {
      const notes = [];
      const count = (n) => n.toLocaleString("en");
      if (prompt.length > MAX_PROMPT_CHARS)
        return { ids: [], notes, error: `The prompt is ${count(prompt.length)} characters; this page takes prompts of up to ${count(MAX_PROMPT_CHARS)} characters and ${count(MAX_PROMPT_TOKENS)} tokens. Shorten it.` };
      const removed = (prompt.match(CONTROL) ?? []).length;
      const clean = prompt.replace(CONTROL, "");
      if (removed) notes.push(`Removed ${removed} control character${removed === 1 ? "" : "s"} from the prompt.`);
      if (!clean.trim()) return { ids: [], notes, error: "The prompt is empty: write a question or a sentence to continue." };
      const inside = [...special.values()].filter((s) => clean.includes(s));
      if (inside.length)
        notes.push(`The prompt contains the text of special tokens (${inside.join(", ")}): the tokenizer reads them as those tokens, as the Python side does.`);
      const text = template ? template.render({ messages: [{ role: "user", content: clean }], add_generation_prompt: true }) : clean;
      const ids = tok.encode(text, { add_special_tokens: !template }).ids;
      if (ids.length > MAX_PROMPT_TOKENS)
        return {
          ids: [],
          notes,
          error: `The prompt is ${count(clean.length)} characters (${count(ids.length)} tokens); this page decodes prompts of up to ${count(MAX_PROMPT_TOKENS)} tokens, so that a laptop keeps up. Shorten it.`,
        };
      return { ids, notes, error: null };
    },
  };
}
