"""TRL's GRPOTrainer over the real server, on CPU, with nothing downloaded.

The model is a tiny Qwen3 built from a config and its tokenizer is trained
here; its generation is scripted (as TRL's own tests script it): a policy
reads the state the environment returned and calls the tool for a sensible
legal action, so whole episodes are played on the server and graded. Every
other rollout stops at once (no tool call), which leaves its episode
unfinished and its reward 0, so the groups have different rewards to learn
from.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from workflow_orchestrator.integrations.trl import WorkflowEnvFactory, WorkflowToolEnv, evaluation_seeds, prompt_dataset
from workflow_orchestrator.server.core import render_text
from workflow_orchestrator.server.inprocess import WorkflowEnv

torch = pytest.importorskip("torch", reason="the trl extra is not installed (bash .ci/install-extras trl)")
pytest.importorskip("trl", reason="the trl extra is not installed (bash .ci/install-extras trl)")
transformers = pytest.importorskip("transformers")

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
]
# A short system prompt keeps the sequences, and so the CPU time, small.
SHORT_PROMPT = "Run the workflow with the tools."
TOOL_NAMES = ("abort", "delegate", "dispatch", "retry", "synthesize", "wait")
LEGAL_LINE = re.compile(r"^- (\w+)\(([^)]*)\)$")


def scripted_call(state_text: str) -> dict[str, Any] | None:
    """The tool call for the latest state: synthesize, else the first delegate or retry, else wait."""
    legal = [LEGAL_LINE.match(line) for line in state_text.split("Legal actions:")[-1].splitlines()]
    actions = [(match.group(1), match.group(2).split(",")) for match in legal if match]
    names = [name for name, _ in actions]
    if "synthesize" in names:
        return {"name": "synthesize", "arguments": {}}
    for name, args in actions:
        if name in ("delegate", "retry") and len(args) == 2:
            return {"name": name, "arguments": {"subtask_id": args[0], "agent_name": args[1]}}
    if "wait" in names:
        return {"name": "wait", "arguments": {}}
    return None


def train_tokenizer() -> Any:
    """A byte-level BPE trained on this environment's texts, with Qwen3's chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from trl.chat_template_utils import qwen3_chat_template

    from workflow_orchestrator.integrations.trl import SYSTEM_PROMPT

    env = WorkflowEnv()
    corpus = [SYSTEM_PROMPT, SHORT_PROMPT]
    for seed in range(3):
        observation = env.reset("easy", seed=seed)
        corpus.append(render_text(observation))
        for _ in range(12):
            call = scripted_call(render_text(observation))
            if call is None or observation["done"]:
                break
            corpus.append(json.dumps(call))
            action = {"action_type": call["name"], **call["arguments"]}
            observation = env.step(action)
            corpus.append(render_text(observation))
    # The prompts as the trainer renders them: Qwen3's template lists the tools' schemas.
    from transformers.utils import get_json_schema

    probe = WorkflowEnvFactory()()
    tools = [get_json_schema(getattr(probe, name)) for name in TOOL_NAMES]
    corpus.append(json.dumps(tools))
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(corpus * 2, trainer=trainer)
    wrapped = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        padding_side="left",
    )
    wrapped.chat_template = qwen3_chat_template
    return wrapped


def scripted_model(tokenizer: Any) -> Any:
    """A tiny Qwen3 whose generate() writes the scripted tool calls instead of sampling."""
    config = transformers.Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=8,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=4,
        max_position_embeddings=8192,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    first_turns = iter(range(1_000_000))

    class ScriptedQwen3(transformers.Qwen3ForCausalLM):
        def generate(self, input_ids: Any = None, attention_mask: Any = None, **_: Any) -> Any:
            completions = []
            for row in input_ids:
                text = tokenizer.decode(row, skip_special_tokens=False)
                turns = text.count("<tool_response>")
                call = scripted_call(text.split("<|im_start|>")[-2])
                if turns == 0 and next(first_turns) % 2:
                    call = None  # this rollout stops at once
                if call is None:
                    completion = "Done.<|im_end|>"
                else:
                    completion = f"<tool_call>\n{json.dumps(call)}\n</tool_call><|im_end|>"
                completions.append(tokenizer.encode(completion, add_special_tokens=False))
            width = max(len(ids) for ids in completions)
            padded = [ids + [tokenizer.pad_token_id] * (width - len(ids)) for ids in completions]
            return torch.cat([input_ids, torch.tensor(padded, dtype=input_ids.dtype)], dim=1)

    torch.manual_seed(0)
    return ScriptedQwen3(config)


def test_scripted_policy_finishes_easy_in_process() -> None:
    factory = WorkflowEnvFactory()
    env = factory()
    text = env.reset(task_id="easy", seed=1, prompt="ignored column")
    for _ in range(15):
        call = scripted_call(text)
        assert call is not None
        text = getattr(env, call["name"])(**call["arguments"])
        if "The episode is over" in text:
            break
    assert env.get_reward() > 0.5
    with pytest.raises(RuntimeError, match="episode is over"):
        env.wait()


def test_unfinished_episode_earns_nothing_and_return_mode_sums_rewards() -> None:
    graded = WorkflowEnvFactory()()
    graded.reset(task_id="easy", seed=1)
    graded.wait()
    assert graded.get_reward() == 0.0
    summed = WorkflowEnvFactory(reward="return")()
    summed.reset(task_id="easy", seed=1)
    first = summed.delegate("technical_design", "tech_lead")
    second = summed.wait()
    rewards = [float(re.match(r"Reward ([-+]?\d+\.\d+)", text).group(1)) for text in (first, second)]
    assert summed.get_reward() == pytest.approx(sum(rewards), abs=1e-3)


def test_prompt_dataset_rows_and_held_out_seeds() -> None:
    dataset = prompt_dataset(["easy", "arena/easy"], range(3), worker_count=4)
    assert len(dataset) == 6
    assert set(dataset.column_names) == {"prompt", "task_id", "seed", "worker_count"}
    assert dataset[4]["task_id"] == "arena/easy" and dataset[4]["seed"] == 1
    held_out = evaluation_seeds(5)
    assert len(held_out) == 5 and held_out.start >= 2_000_000_000
    with pytest.raises(ValueError):
        evaluation_seeds(5, start=0)


def test_two_grpo_steps_against_the_server(live_server: Any, tmp_path: Any) -> None:
    from trl import GRPOConfig, GRPOTrainer

    tokenizer = train_tokenizer()
    model = scripted_model(tokenizer)
    factory = WorkflowEnvFactory(live_server.url)
    args = GRPOConfig(
        output_dir=str(tmp_path / "run"),
        use_cpu=True,
        per_device_train_batch_size=2,
        num_generations=2,
        max_steps=2,
        max_completion_length=4096,
        learning_rate=1e-3,
        logging_steps=1,
        report_to="none",
        gradient_checkpointing=False,
        save_strategy="no",
        dataloader_num_workers=0,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        train_dataset=prompt_dataset(["easy"], range(2), system_prompt=SHORT_PROMPT),
        environment_factory=factory,
    )
    try:
        trainer.train()
    finally:
        factory.close()
    assert trainer.state.global_step == 2
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 2
    rewards = [entry["rewards/WorkflowToolEnv/mean"] for entry in logged]
    assert all(0.0 < reward < 1.0 for reward in rewards), rewards
    played = [env for env in factory.instances if isinstance(env, WorkflowToolEnv)]
    assert len(played) >= 2
    finished = [env.get_reward() for env in played if env.get_reward() > 0]
    assert finished, "no rollout finished its episode on the server"
