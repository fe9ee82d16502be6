"""Tag, param, metric and artifact names shared by the recorder, the sweep and the report."""

# Run and trace tags (DESIGN.md "Run tags").
TAG_TASK = "bv.task"
TAG_ARCHETYPE = "bv.archetype"
TAG_MODEL = "bv.model"
TAG_ADAPTER = "bv.adapter"  # the LoRA adapter served on the model (absent: the base model)
TAG_FAMILY = "bv.family"
TAG_QUANT = "bv.quant"
TAG_ENGINE = "bv.engine"
TAG_RUNTIME = "bv.runtime"
TAG_AGENT = "bv.agent"
TAG_RUN_KEY = "bv.run_key"
TAG_REPEAT = "bv.repeat"
TAG_STATUS = "bv.status"
TAG_TRACE_ID = "bv.trace_id"
TAG_PROVIDER = "bv.provider"
TAG_ERROR = "bv.error"
TAG_KIND = "bv.kind"  # simulation | server | quick_eval | speed | judge_compile
TAG_SERVER_ID = "bv.server_id"  # the MLflow run id of the served model's record
TAG_HOST = "bv.host"  # host and pid of the process writing a run: a run whose writer is gone is reaped
TAG_PID = "bv.pid"
TAG_SANDBOX = "bv.sandbox"  # what confined the agent, its setup and checks: bwrap, container or none
TAG_REASON = "bv.reason"  # why a run is not a success, one line
TAG_CONFIG_ID = "bv.config_id"  # identity.config_id: the report's comparison key
TAG_SERVED_ID = "bv.served_id"  # identity.served_id: how the model was served (speed refs, quick evals)
TAG_DESCRIPTION = "mlflow.note.content"  # the run's description in the MLflow UI (markdown)

STATUS_SUCCESS = "success"
STATUS_FAILED = "failed"
STATUS_ERROR = "error"
STATUS_TIMEOUT = "timeout"

# Params.
PARAM_ENGINE_ARGS = "engine_args"
PARAM_TEMPERATURE = "temperature"
PARAM_SEED = "seed"
PARAM_MAX_TURNS = "max_turns"
PARAM_TIMEOUT_S = "timeout_s"
PARAM_LLAMA_BUILD = "llama_cpp_build"
PARAM_MODEL_SHA256 = "model_sha256"
PARAM_ADAPTER_SHA256 = "adapter_sha256"
PARAM_ADAPTER_SOURCE = "adapter_source"
PARAM_ADAPTER_SCALE = "adapter_scale"
PARAM_MODEL_SOURCE = "model_source"
PARAM_MODEL_REVISION = "model_revision"
PARAM_MODEL_FILE = "model_file"
PARAM_REPO_COMMIT = "repo_commit"
PARAM_AGENT_VERSION = "agent_version"
PARAM_TASK_FILE_SHA256 = "task_file_sha256"
PARAM_CTX = "ctx_size"
PARAM_ENGINE_CONFIG = "engine_config"  # the named config (default: the model's own)
PARAM_ENGINE_FLAGS = "engine_flags"  # the resolved flags, as JSON
PARAM_IMAGE = "image"  # the container image that served the run, by digest
PARAM_CHAT_TEMPLATE_SHA256 = "chat_template_sha256"
PARAM_PARALLEL = "parallel"
PARAM_TOP_P = "top_p"
PARAM_MAX_TOKENS = "max_tokens"
PARAM_PROMPT_VARS = "prompt_vars"
PARAM_SANDBOX = "sandbox"  # the same as the tag, beside the other settings of the run
PARAM_TOOLCHAIN = "toolchain"  # the agent toolchain (its lock's sha and Python version)
PARAM_NETWORK = "agent_network"  # none, or packages (the package index)
PARAM_CONFIG_IDENTITY = "config_identity"  # identity parts as JSON: what the ids hash

# Metrics (DESIGN.md "Metrics").
M_SUCCESS = "success"
M_CHECKS_PASSED = "checks_passed"
M_CHECKS_TOTAL = "checks_total"
M_TURNS = "turns"
M_TOOL_CALLS = "tool_calls"
M_TOOL_ERRORS = "tool_errors"
M_HALLUCINATED_TOOL_CALLS = "hallucinated_tool_calls"
M_LOOP_DETECTED = "loop_detected"
M_TOKENS_PROMPT = "tokens_prompt"
M_TOKENS_COMPLETION = "tokens_completion"
M_REQUESTS = "requests"  # completions the proxy forwarded
M_REQUESTS_WITH_USAGE = "requests_with_usage"  # of them, those that reported token usage (tokens: all or absent)
M_TTFT_S = "ttft_s"
M_TTFT_COLD_S = "ttft_cold_s"  # median TTFT of requests served nothing from the prompt cache
M_TTFT_WARM_S = "ttft_warm_s"  # median TTFT of requests that reused cached prompt tokens
M_TOKENS_PROMPT_CACHED = "tokens_prompt_cached"  # prompt tokens the server served from its cache
M_PROMPT_TPS = "prompt_tps"
M_GEN_TPS = "gen_tps"
M_LOAD_S = "load_s"
M_PEAK_VRAM_MB = "peak_vram_mb"
M_PEAK_RSS_MB = "peak_rss_mb"
M_WALL_S = "wall_s"
M_COST_USD = "cost_usd"
M_SETUP_S = "setup_s"  # the task's setup commands (absent when it has none)

ALL_METRICS = [
    M_SUCCESS, M_CHECKS_PASSED, M_CHECKS_TOTAL, M_TURNS, M_TOOL_CALLS, M_TOOL_ERRORS,
    M_HALLUCINATED_TOOL_CALLS, M_LOOP_DETECTED, M_TOKENS_PROMPT, M_TOKENS_COMPLETION, M_TTFT_S,
    M_PROMPT_TPS, M_GEN_TPS, M_LOAD_S, M_PEAK_VRAM_MB, M_PEAK_RSS_MB, M_WALL_S, M_COST_USD, M_SETUP_S,
]

# Artifacts.
A_DIFF = "diff.txt"  # .txt: the MLflow UI previews it (not .patch)
A_CHECKS = "checks.json"
A_AGENT_EVENTS = "agent_events.jsonl"
A_PROXY_REQUESTS = "proxy_requests.jsonl"
A_SERVER_LOG = "llama-server.log"
A_TOOL_OUTPUTS = "tool_outputs.jsonl"
A_SUMMARY = "summary.json"

# Quick evals.
TAG_SET = "bv.set"  # the quick-eval set a run scored
TAG_EVAL_KEY = "bv.eval_key"  # model file + engine config + sampling + set fingerprint: scored items are re-used by it
PARAM_SET_VERSION = "set_version"
PARAM_SET_FINGERPRINT = "set_fingerprint"

# Sweeps.
TAG_SWEEP = "bv.sweep"  # the plan's name
TAG_CELL_KEY = "bv.cell_key"  # the plan cell (everything known before serving): what a resume looks up
TAG_JUDGE_TRUST = "bv.judge_trust"  # the judge's trust line at scoring time ("untrusted: exact 0.50 <= ...")
TAG_JUDGE_SELF = "bv.judge_self_judged"  # "true": the judge LM is this run's own model; its scores never count
