"""Type stubs and API reference for the native module `corral._core` (Rust, pyo3).

Everything here is re-exported from the `corral` package; import it from there.
"""

import os
from collections.abc import Iterable, Sequence
from typing import Any, Literal, SupportsIndex, final

__all__ = [
    "CompiledGrammar",
    "GrammarCompiler",
    "GrammarError",
    "GrammarMatcher",
    "GrammarSyntaxError",
    "LimitExceededError",
    "TokenizerInfo",
    "UnsupportedSchemaError",
    "VocabError",
    "__version__",
    "batch_accept_token",
    "batch_fill_next_token_bitmask",
]

__version__: str

class GrammarError(ValueError):
    """A grammar cannot be compiled (undefined rule, missing root, ...).

    Attributes:
        line: 1-based line of the problem in the grammar text, if known.
        column: 1-based column (in characters) of the problem, if known.
        snippet: The offending source line, if known.
        message: The bare message, without position or snippet.
    """

    line: int | None
    column: int | None
    snippet: str | None
    message: str

class GrammarSyntaxError(GrammarError):
    """Grammar text is malformed.

    `str(err)` reads `"L:C: error: msg"` followed by the source line and a
    caret under the offending characters.
    """

class LimitExceededError(GrammarError):
    """Compiling the grammar would exceed a resource limit (size, states)."""

class UnsupportedSchemaError(GrammarError):
    """A JSON Schema uses a keyword corral cannot enforce exactly.

    The message reads ``unsupported keyword "uniqueItems" at /properties/tags: ...``.
    Pass ``lenient=True`` to skip such keywords with a warning instead.

    Attributes:
        pointer: JSON pointer of the schema holding the keyword (``""`` is the root).
        keyword: The keyword.
    """

    pointer: str
    keyword: str

class VocabError(ValueError):
    """A vocabulary description is invalid (bad ids, empty vocabulary, ...)."""

@final
class TokenizerInfo:
    """A tokenizer vocabulary: the bytes of every token plus its stop and special ids.

    Build one per tokenizer and share it between compilers and matchers.
    """

    @staticmethod
    def from_vocab(
        tokens: list[bytes],
        *,
        eos_token_ids: list[int],
        vocab_size: int | None = None,
        special_token_ids: list[int] = ...,
    ) -> TokenizerInfo:
        """Build a vocabulary from the raw bytes of each token.

        Args:
            tokens: `tokens[i]` is the byte string that token `i` decodes to.
            eos_token_ids: Ids that end generation (stop tokens).
            vocab_size: The model's vocabulary size (logits width), at least
                `len(tokens)`; ids past `len(tokens)` are padding and never allowed.
                Defaults to `len(tokens)`.
            special_token_ids: Ids that never match grammar text; they are only
                allowed by token elements such as `<think>` or `<[123]>`. Stop
                tokens are always special; empty tokens never match text either.

        Raises:
            VocabError: If an id is out of range or the vocabulary is empty.
        """

    @staticmethod
    def from_pieces(
        pieces: Sequence[str | None],
        *,
        vocab_type: str,
        eos_token_ids: list[int],
        special_token_ids: list[int] = ...,
        vocab_size: int | None = None,
        byte_tokens: dict[int, int] | None = None,
    ) -> TokenizerInfo:
        """Build a vocabulary from a tokenizer's stored pieces (token strings).

        Each piece is decoded to the bytes it stands for according to
        `vocab_type`:

        - `"byte_level"` (GPT-2, Llama 3, Qwen, SmolLM): every character maps
          back to one byte through GPT-2's byte-to-unicode table (`"Ġ"` is a
          space, `"Ċ"` a newline); a character outside that table stands for
          its own UTF-8 bytes.
        - `"sentencepiece"` (Llama 2, Mistral, Gemma): `"<0xNN>"` is the byte
          `NN`; otherwise `"▁"` becomes a space and the piece is UTF-8 encoded.
        - `"raw"`: the piece's UTF-8 bytes.

        Args:
            pieces: `pieces[i]` is the piece of token `i`; `None` for an id with
                no token (it decodes to `b""` and is never allowed by text).
            vocab_type: `"byte_level"`, `"sentencepiece"` or `"raw"`.
            eos_token_ids: Ids that end generation (stop tokens).
            special_token_ids: Ids that never match grammar text. Special and
                stop tokens keep their piece text as bytes (`b"<|im_end|>"`).
            vocab_size: The model's vocabulary size, at least `len(pieces)`.
            byte_tokens: Ids that stand for one byte, mapped to that byte
                (0..255); overrides the decoding of those pieces.

        Raises:
            VocabError: Unknown `vocab_type`, an id out of range, a
                `byte_tokens` value that is not a byte, or an empty vocabulary.
        """

    @staticmethod
    def from_gguf(
        path: str | os.PathLike[str],
        *,
        vocab_size: int | None = None,
        eos_token_ids: list[int] | None = None,
    ) -> TokenizerInfo:
        """Read the vocabulary from a GGUF file's metadata (llama.cpp's format).

        Only the metadata is read (GGUF versions 2 and 3), never the tensors;
        the GIL is released meanwhile. `tokenizer.ggml.model` `"gpt2"` is
        byte-level BPE and `"llama"` is SentencePiece. Unknown, control and
        unused tokens are special; byte tokens `<0xNN>` are single bytes;
        user-defined tokens are literal text. Stop tokens are the file's EOS,
        EOT and EOM ids plus control tokens named like an end of generation
        (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`, `<|endoftext|>`, ...).

        Args:
            path: The `.gguf` file.
            vocab_size: The model's vocabulary size if larger than the number
                of tokens in the file (padded logits).
            eos_token_ids: Stop ids to use instead of those found in the file.

        Raises:
            OSError: The file cannot be opened (`FileNotFoundError`, ...).
            VocabError: Not a GGUF file, a truncated file, an unsupported GGUF
                version, missing tokenizer keys, an unsupported tokenizer
                model, or an id out of range. The message names the file.
        """

    @staticmethod
    def from_tiktoken(
        path_or_bytes: str | os.PathLike[str] | bytes,
        *,
        special_tokens: dict[str, int],
        eos_token_ids: list[int],
        vocab_size: int | None = None,
    ) -> TokenizerInfo:
        """Read a tiktoken ranks file: one `<base64 bytes> <rank>` line per token.

        The rank is the token id. Ids with neither a rank nor a special token
        (gaps) become empty tokens that are never allowed.

        Args:
            path_or_bytes: The file's path, or its contents as `bytes`.
            special_tokens: Special token text to id, e.g. `{"<|im_end|>": 151645}`.
            eos_token_ids: Ids that end generation (stop tokens).
            vocab_size: The model's vocabulary size, at least the number of ids.

        Raises:
            OSError: The file cannot be read.
            VocabError: A malformed line (named by number), a repeated rank, a
                special token on an id a rank has, or an id out of range.
        """

    @staticmethod
    def from_huggingface(
        tokenizer: Any,
        *,
        vocab_size: int | None = None,
        eos_token_ids: list[int] | None = None,
    ) -> TokenizerInfo:
        """Build a vocabulary from a Hugging Face tokenizer.

        Accepts a `transformers` tokenizer (fast or slow) or a
        `tokenizers.Tokenizer`; the decoding family (byte-level,
        SentencePiece, raw) is detected from the tokenizer.

        Args:
            tokenizer: The tokenizer.
            vocab_size: The model's vocabulary size (`model.config.vocab_size`)
                when larger than the tokenizer's; the extra ids are never allowed.
            eos_token_ids: Stop ids to use instead of the tokenizer's.

        Raises:
            VocabError: The tokenizer's decoder is not supported, or an id is
                out of range.
        """

    @staticmethod
    def from_llama_cpp(llama: Any, *, vocab_size: int | None = None) -> TokenizerInfo:
        """Build a vocabulary from a `llama_cpp.Llama` model.

        Args:
            llama: The loaded model.
            vocab_size: The model's vocabulary size if larger than the tokenizer's.
        """

    @classmethod
    def _from_state(cls, state: bytes) -> TokenizerInfo:
        """Rebuild from `__reduce__`'s serialized form (used by pickle)."""

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        """Pickle support: a compact serialized form; the trie is rebuilt on load."""

    @property
    def vocab_type(self) -> Literal["raw", "byte_level", "sentencepiece"]:
        """How the token pieces were decoded: `"byte_level"`, `"sentencepiece"` or `"raw"`."""

    @property
    def memory_bytes(self) -> int:
        """Approximate heap memory of the vocabulary and its token trie, in bytes."""

    def memory_usage(self) -> int:
        """Heap bytes of the vocabulary and its token trie (same as `memory_bytes`).

        Shared by every grammar compiled for it, so not counted by
        `CompiledGrammar.memory_usage`.
        """

    @property
    def vocab_size(self) -> int:
        """The model's vocabulary size: the bitmask covers this many tokens."""

    @property
    def tokenizer_size(self) -> int:
        """The number of tokens the tokenizer defines.

        Ids from here up to `vocab_size` are padding and never allowed.
        """

    @property
    def stop_token_ids(self) -> list[int]:
        """The stop (end-of-sequence) token ids, sorted."""

    @property
    def special_token_ids(self) -> list[int]:
        """The special token ids (stop tokens included), sorted."""

    @property
    def decoded_vocab(self) -> list[bytes]:
        """The bytes of every token, indexed by id."""

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes of one token.

        Raises:
            IndexError: If `token_id` is not below `tokenizer_size`.
        """

@final
class GrammarCompiler:
    """Compiles grammars against one vocabulary, caching results by grammar text."""

    def __new__(cls, tokenizer_info: TokenizerInfo) -> GrammarCompiler: ...
    @property
    def tokenizer_info(self) -> TokenizerInfo:
        """The vocabulary grammars are compiled for."""

    def compile_grammar(self, grammar: str | bytes, root: str = "root") -> CompiledGrammar:
        """Compile GBNF grammar text (llama.cpp dialect).

        The GIL is released while compiling. Compiling the same text and root
        again returns the cached result.

        Args:
            grammar: The grammar text.
            root: The name of the start rule.

        Raises:
            GrammarSyntaxError: The text is malformed (has `.line` and `.column`).
            GrammarError: The grammar cannot be built (undefined rule, no root, ...).
            LimitExceededError: The grammar is too large.
        """

    def compile_regex(self, pattern: str) -> CompiledGrammar:
        """Compile a regular expression into a grammar matching exactly the
        strings ``re.fullmatch(pattern, s)`` accepts.

        Syntax: Python's ``re`` (``str`` pattern, no flags) plus the ECMAScript
        spellings JSON Schema patterns use (``\\u{...}``, ``\\p{...}``,
        ``(?<name>...)``). ``\\d``, ``\\w``, ``\\s`` and ``.`` have Python's
        Unicode meaning. ``^``/``$`` are allowed only at the ends. The GIL is
        released while compiling; the same pattern again returns the cached
        result. The masks of the pattern's states are built here, for up to
        10 ms (a few ms for typical patterns), so generation steps only copy
        them.

        Args:
            pattern: The regular expression.

        Raises:
            GrammarSyntaxError: The pattern is malformed (has `.line` and `.column`).
            GrammarError: The pattern uses a construct corral cannot enforce
                (lookaround, backreference, word boundary, inline flags,
                possessive quantifier, an anchor not at an end), or matches
                no string.
            LimitExceededError: The pattern is too large (nesting, repetition counts).
        """

    def compile_json_schema(
        self,
        schema: str | dict[str, Any] | bool | type,
        *,
        any_whitespace: bool = True,
        indent: int | None = None,
        separators: tuple[str, str] | None = None,
        strict_mode: bool = True,
        property_order: Literal["schema", "any"] = "schema",
        max_whitespace: int = 64,
        lenient: bool = False,
    ) -> CompiledGrammar:
        """Compile a JSON Schema (draft 2020-12; draft-04/06/07 spellings too).

        Every keyword is enforced exactly or the compile fails: nothing is
        silently ignored except annotations and keywords of no draft. The GIL
        is released while compiling; the same schema and options again reuse
        the cached automaton.

        Args:
            schema: A dict, JSON text, or a pydantic model class
                (``model_json_schema()`` is used).
            any_whitespace: Allow, between tokens, an optional newline and at
                most ``max_whitespace`` spaces/tabs. If false, the layout is
                exactly ``json.dumps(value, indent=indent, separators=separators)``.
            indent: ``json.dumps`` indent (only with ``any_whitespace=False``).
            separators: ``(item, key)`` separators; default as ``json.dumps``.
            strict_mode: Objects with ``properties`` allow no other keys unless
                ``additionalProperties``/``patternProperties`` say otherwise, and
                ``prefixItems`` without ``items`` allow no further items.
                ``False`` follows the specification exactly.
            property_order: ``"schema"``: keys in ``properties`` order, other keys
                after them. ``"any"``: named keys in any order, each at most once.
            max_whitespace: Most spaces/tabs in one gap.
            lenient: Skip keywords that cannot be enforced, with a
                ``SchemaCoverageWarning`` listing them, instead of raising.

        Raises:
            UnsupportedSchemaError: A keyword cannot be enforced exactly
                (has ``.pointer`` and ``.keyword``).
            GrammarError: The schema is invalid (bad keyword value, dangling
                ``$ref``) or accepts no value.
            LimitExceededError: The schema is too large.
        """

    def compile_builtin_json_grammar(
        self,
        *,
        any_whitespace: bool = True,
        indent: int | None = None,
        separators: tuple[str, str] | None = None,
        max_whitespace: int = 64,
    ) -> CompiledGrammar:
        """Compile a grammar for any JSON value, in the layout the options
        describe (as for `compile_json_schema`)."""

    def json_schema_coverage(
        self,
        schema: str | dict[str, Any] | bool | type,
        *,
        strict_mode: bool = True,
        property_order: Literal["schema", "any"] = "schema",
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """What `compile_json_schema` would enforce, without compiling an automaton.

        Returns:
            ``(enforced, unsupported)``: lists of ``(JSON pointer, keyword)``.

        Raises:
            GrammarError: The schema is invalid.
        """

@final
class CompiledGrammar:
    """An immutable compiled grammar; share it between many matchers and threads."""

    @property
    def tokenizer_info(self) -> TokenizerInfo:
        """The vocabulary the grammar was compiled for."""

    @property
    def num_rules(self) -> int:
        """The number of rules in the grammar."""

    @property
    def num_states(self) -> int:
        """The number of DFA states over all rules."""

    @property
    def root(self) -> str:
        """The name of the start rule."""

    def memory_usage(self) -> int:
        """Heap bytes of the grammar's tables and its token-classification cache.

        The cache fills as matchers compute masks, so this grows until every
        reachable state has been visited. The vocabulary is shared and not
        counted (see `TokenizerInfo.memory_usage`).
        """

@final
class GrammarMatcher:
    """The state of one constrained generation.

    Each decoding step: `fill_next_token_bitmask`, mask the logits, sample a
    token, `accept_token` it. A stop token is allowed exactly when the grammar
    can end; accepting it terminates the matcher.
    """

    def __new__(
        cls,
        compiled_grammar: CompiledGrammar,
        *,
        override_stop_tokens: list[int] | None = None,
        max_rollback_tokens: int = -1,
    ) -> GrammarMatcher:
        """Start matching `compiled_grammar` from its root.

        Args:
            compiled_grammar: The grammar to match.
            override_stop_tokens: Stop tokens to use instead of the vocabulary's.
            max_rollback_tokens: How many tokens `rollback` may undo; -1 (the
                default) for no limit. With a limit the matcher's memory stays
                about the window's plus a few KB however long the text (what
                lies before the window is compacted to what later tokens can
                still complete); without one it grows with the text (~70
                bytes per byte).

        Raises:
            ValueError: If a stop token id is out of range.
        """

    def accept_token(self, token_id: SupportsIndex) -> bool:
        """Advance by one token.

        Args:
            token_id: An `int`, or any integer with `__index__` as samplers
                hand them out (a numpy integer, a one-element integer torch
                tensor); not a `bool`.

        Returns:
            True if the grammar allows the token here; otherwise False and the
            state is unchanged (also for ids out of range, after termination,
            and in the error state).

        Raises:
            TypeError: If `token_id` is not an integer (or is a `bool`).
        """

    def accept_string(self, data: str | bytes) -> bool:
        """Advance by raw text, all or nothing; counts as one step for `rollback`.

        Returns:
            True if the whole text is allowed here; otherwise False and the
            state is unchanged.
        """

    def fill_next_token_bitmask(self, bitmask: Any, index: int = 0) -> bool:
        """Write the allowed-token mask into row `index` of `bitmask`.

        Args:
            bitmask: A writable, C-contiguous int32 buffer in CPU memory of shape
                `(batch, words)` or `(words,)` with `words >= ceil(vocab_size / 32)`:
                a numpy array, a CPU torch tensor, or anything exporting the buffer
                protocol. Bit `i % 32` of word `i // 32` set means token `i` is allowed.
            index: The row to write.

        Returns:
            True if some token is disallowed (the mask needs applying).

        Raises:
            TypeError: If `bitmask` is not an int32 array in CPU memory.
            ValueError: If it is read-only, not C-contiguous, not 1-D or 2-D, too
                narrow, or has no row `index`.
        """

    def unsafe_fill_next_token_bitmask_ptr(self, address: int, num_words: int) -> bool:
        """`fill_next_token_bitmask` into `num_words` int32 words at `address`.

        For inference loops that keep one mask buffer and pass its address
        (`tensor.data_ptr()` of a contiguous CPU int32 row, `array.ctypes.data`),
        skipping the buffer-protocol checks (~50 ns a call). The memory is not
        checked: it must be writable CPU memory of at least `num_words` int32
        words, alive for the call; anything else is undefined behaviour.

        Returns:
            True if some token is disallowed (the mask needs applying).

        Raises:
            ValueError: If `address` is null or not 4-byte aligned, or
                `num_words < ceil(vocab_size / 32)`.
        """

    def rollback(self, num_tokens: int) -> None:
        """Undo the last `num_tokens` accepted tokens (or `accept_string` calls).

        Raises:
            ValueError: If fewer steps than that can be rolled back.
        """

    def fork(self) -> GrammarMatcher:
        """An independent copy of this matcher in its current state."""

    def reset(self) -> None:
        """Back to the start of the grammar; clears termination and the error state."""

    def is_terminated(self) -> bool:
        """Whether a stop token has been accepted."""

    def can_terminate(self) -> bool:
        """Whether the text accepted so far is a complete match of the grammar."""

    def error(self) -> str | None:
        """The message of the sticky error state, or None if the matcher is healthy.

        In the error state every token is refused and masks are all zero.
        """

    @property
    def compiled_grammar(self) -> CompiledGrammar:
        """The grammar being matched."""

    @property
    def num_accepted_tokens(self) -> int:
        """The number of steps accepted and not rolled back."""

    @property
    def stop_token_ids(self) -> list[int]:
        """The stop token ids in effect, sorted."""

    def memory_usage(self) -> int:
        """Bytes this matcher owns: its parse chart, rollback history and scratch.

        The chart keeps every step since the start (rollback and long-range
        completions need it), so this grows with the accepted text. The
        compiled grammar is shared and not counted.
        """

    def _debug_panic(self) -> bool:
        """Testing hook: trigger a Rust panic inside; it is caught and the matcher
        enters its error state. Returns False."""

def batch_fill_next_token_bitmask(
    matchers: Sequence[GrammarMatcher],
    bitmask: Any,
    indices: Sequence[int] | None = None,
    num_threads: int | None = None,
) -> list[bool]:
    """Fill one bitmask row per matcher in one call, in parallel, without the GIL.

    Row `indices[i]` (default `i`) of `bitmask` gets the mask of `matchers[i]`,
    exactly what `matchers[i].fill_next_token_bitmask(bitmask, indices[i])`
    writes. The rows are filled by the calling thread and helper threads
    started on first use, each taking the next row left, with the GIL
    released, so other Python threads keep running meanwhile; one slow
    matcher does not hold up the others, and a helper that wakes after the
    caller has taken every row is not waited for. When calls come less than
    0.5 ms apart, the helpers wait for the next one spinning (up to 0.5 ms,
    yielding the CPU often) rather than sleeping, since waking a thread
    costs more than a call of warm rows; calls further apart never spin,
    and such a call, finding the helpers asleep, fills its rows alone until
    they turn out to be long work (more than ~0.25 ms left after its first
    50 us, as when rows meet new grammar states), and only then wakes them.
    Calls from several Python threads at once share the helpers: a call
    that finds them busy fills its rows on its own thread. A process forked
    after the helpers started starts helpers of its own.

    Example::

        bitmask = allocate_token_bitmask(len(matchers), info.vocab_size)
        batch_fill_next_token_bitmask(matchers, bitmask)
        apply_token_bitmask_inplace(logits, bitmask)

    Args:
        matchers: The matchers (a list, tuple or other iterable), each at
            most once (`fork()` one to fill two rows).
        bitmask: A writable, C-contiguous int32 buffer in CPU memory of shape
            `(batch, words)` (as for `GrammarMatcher.fill_next_token_bitmask`).
        indices: The row of each matcher, all distinct; defaults to `0..len(matchers)`.
        num_threads: Threads to use, the calling thread included: `None`
            for one per core this process may use (CPU affinity and cgroup
            quota counted), 1 to fill the rows one after another on the
            calling thread, `n` for the calling thread and `n - 1` helpers
            (kept for reuse).

    Returns:
        For each matcher, whether some token is disallowed in its row.

    Raises:
        TypeError: If `bitmask` is not an int32 array in CPU memory.
        ValueError: If `indices` and `matchers` differ in length, a row or a
            matcher appears twice, a row is out of range, `num_threads` is 0,
            or the bitmask is read-only, not C-contiguous or too narrow.
    """

def _apply_bitmask_rows(
    logits: Any,
    bitmask: Any,
    rows: Sequence[int] | None,
    vocab_size: int,
    num_threads: int | None = None,
) -> None:
    """The CPU kernel of `corral.apply_token_bitmask_inplace` (which checks
    the arguments and calls this for numpy arrays and CPU tensors): -inf
    over the clear bits of each listed row, and over columns at or past
    `vocab_size`. `logits`: 2-D float32, float64, or float16 viewed as
    uint16, rows contiguous; `bitmask`: int32, C-contiguous."""

def batch_accept_token(
    matchers: Sequence[GrammarMatcher],
    token_ids: Iterable[SupportsIndex],
    num_threads: int | None = None,
) -> list[bool]:
    """Accept one token in each matcher in one call, in parallel, without the GIL.

    `matchers[i]` accepts `token_ids[i]`, exactly as
    `matchers[i].accept_token(token_ids[i])` would, in place of a Python
    loop over the batch. The rows are shared out between the calling
    thread and the helper threads of `batch_fill_next_token_bitmask`, the
    same way: a decoding loop that accepts with this call and then fills
    with that one has each thread mostly meet the matchers it just
    advanced, still in its core's cache.

    Example::

        batch_fill_next_token_bitmask(matchers, bitmask)
        apply_token_bitmask_inplace(logits, bitmask)
        sampled = sample(logits).tolist()
        accepted = batch_accept_token(matchers, sampled)

    Args:
        matchers: The matchers (a list, tuple or other iterable), each at
            most once.
        token_ids: One token id per matcher, each as `accept_token` takes
            it (a list of ints, a numpy array; a tensor's `.tolist()` is
            faster than the tensor itself, whose elements are tensors); an
            int that is no token id (negative, past the vocabulary) is
            refused, as by `accept_token`.
        num_threads: As for `batch_fill_next_token_bitmask`.

    Returns:
        For each matcher, whether it accepted its token (a refused token
        leaves that matcher unchanged, as `accept_token` does).

    Raises:
        TypeError: If a token id is not an integer (or is a `bool`), or
            `token_ids` is a `str`.
        ValueError: If `token_ids` and `matchers` differ in length, a matcher
            appears twice, or `num_threads` is 0.
    """
