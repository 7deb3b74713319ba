"""Adapters that apply corral's token masks inside real samplers.

Each adapter imports its framework only when its module is imported:

- `corral.adapters.transformers`: a `transformers` `LogitsProcessor` for
  `model.generate(..., logits_processor=[...])` (batches, sampling, beam search).
- `corral.adapters.llama_cpp`: a logits processor for `llama_cpp.Llama`, plus
  `create_completion` / `create_chat_completion` helpers.
- `corral.adapters.vllm`: the structured-output backend protocol of batch
  engines such as vLLM (compile per request, accept / validate / rollback,
  fill a row of a shared bitmask); it does not import vLLM.
- `corral.adapters.numpy`: the same logits processor for raw numpy logits.

All of them share `RowMatchers` (in `corral.adapters.rows`): one matcher per
batch row that follows the rows' token sequences, so rows may be reordered
between steps (beam search) and matchers are forked where beams split.
"""

from corral.adapters.rows import GrammarSpec, RowMatchers

__all__ = ["GrammarSpec", "RowMatchers"]
