// specviz/assets/live/tokentext.js against what the Python side shows for the same text
// (specviz/figures/text.py `visible` and `literal`, specviz/trace/schema.py `byte_label`).
import assert from "node:assert/strict";
import { test } from "node:test";

import { BYTE_OF, byteLabel, literal, visible } from "../../specviz/assets/live/tokentext.js";

// written by Python's functions on these inputs
const PYTHON = {
  "visible": [
    [
      " the\n",
      "\u2423the\u23ce"
    ],
    [
      "",
      "\u2205"
    ],
    [
      "<|im_end|>",
      "\u25a0"
    ],
    [
      "a\u202eb",
      "a\\u202eb"
    ],
    [
      "\u0000\u001b",
      "\\u0000\\u001b"
    ],
    [
      "tab\there",
      "tab\u21e5here"
    ],
    [
      "\udb40\udc01x",
      "\\U000e0001x"
    ],
    [
      "h\u00e9llo \ud83c\udf89",
      "h\u00e9llo\u2423\ud83c\udf89"
    ]
  ],
  "literal": [
    [
      "line\nnext\ttab",
      "line\nnext\ttab"
    ],
    [
      "a\u202eb\u200bc",
      "a\\u202eb\\u200bc"
    ],
    [
      "\u0007bell",
      "\\u0007bell"
    ],
    [
      "\udb40\udc01",
      "\\U000e0001"
    ]
  ],
  "byteLabel": [
    [
      [
        32,
        240,
        159
      ],
      " \u2039F0 9F\u203a"
    ],
    [
      [
        240,
        159,
        142,
        137
      ],
      "\ud83c\udf89"
    ],
    [
      [
        159,
        142,
        137,
        65
      ],
      "\u20399F 8E 89\u203aA"
    ],
    [
      [
        65,
        226,
        130
      ],
      "A\u2039E2 82\u203a"
    ],
    [
      [
        255,
        65,
        195,
        169
      ],
      "\u2039FF\u203aA\u00e9"
    ]
  ]
};

test("visible marks whitespace and hides nothing, as Python's visible does", () => {
  for (const [text, shown] of PYTHON.visible) assert.equal(visible(text), shown, JSON.stringify(text));
});

test("literal keeps newlines and tabs and escapes every other hidden character", () => {
  for (const [text, shown] of PYTHON.literal) assert.equal(literal(text), shown, JSON.stringify(text));
});

test("byteLabel shows bytes that are only part of a character as hex, as byte_label does", () => {
  for (const [bytes, shown] of PYTHON.byteLabel) assert.equal(byteLabel(Uint8Array.from(bytes)), shown, JSON.stringify(bytes));
});

test("the byte-level alphabet covers every byte once", () => {
  assert.equal(BYTE_OF.size, 256);
  assert.deepEqual([...new Set(BYTE_OF.values())].sort((a, b) => a - b), [...Array(256).keys()]);
  assert.equal(BYTE_OF.get("Ġ"), 0x20); // GPT-2's space
});
