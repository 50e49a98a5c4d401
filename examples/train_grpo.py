"""GRPO with TRL on workflow_orchestrator: a small Qwen model learns to orchestrate, on one GPU.

Install and start (on the GPU machine; there PyPI's torch is the CUDA build you want)::

    uv sync --extra trl
    uv run server --no-web --max-sessions 64 &
    uv run python examples/train_grpo.py --server http://127.0.0.1:8000

Each rollout holds one WebSocket session while its batch is generated: the
server's ``--max-sessions`` must be at least ``--batch-size`` x
``--accumulation`` (32 here), plus one probe instance. Several servers share
the load with ``--server URL1 --server URL2``; without ``--server`` the
episodes run in this process.

``--check`` builds the configuration, the datasets and the environment
factory, prints them and stops, without loading the model (no GPU needed).
"""

from __future__ import annotations

import argparse

from workflow_orchestrator.integrations.trl import WorkflowEnvFactory, evaluation_seeds, prompt_dataset

TRAIN_TASKS = ["easy", "medium", "hard", "expert", "arena/easy", "arena/medium"]


def build_config(args: argparse.Namespace):  # -> trl.GRPOConfig
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=args.output_dir,
        # One generation batch per optimisation step: batch_size x accumulation rollouts,
        # num_generations of them per prompt (GRPO's group).
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.accumulation,
        num_generations=8,
        max_steps=args.steps,
        learning_rate=1e-6,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=10,
        beta=0.0,
        # A whole episode is one completion: the tool results (the states) count toward it.
        max_completion_length=12288,
        max_tool_calling_iterations=40,
        temperature=1.0,
        chat_template_kwargs={"enable_thinking": False},
        bf16=not args.check,  # --check runs on a machine without a GPU
        use_cpu=args.check,
        gradient_checkpointing=True,
        logging_steps=1,
        log_completions=True,
        save_steps=100,
        report_to="none",
        seed=0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", action="append", help="a server URL (repeat for several); none: in process")
    parser.add_argument("--token", help="the servers' bearer token, if they have one")
    parser.add_argument("--model", default="Qwen/Qwen3-0.6B")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--accumulation", type=int, default=4)
    parser.add_argument("--output-dir", default="grpo-workflow")
    parser.add_argument("--check", action="store_true", help="build everything but the model, print it, stop")
    args = parser.parse_args()

    config = build_config(args)
    # Training seeds 0..1999; evaluation on the held-out seeds, never trained on.
    train = prompt_dataset(TRAIN_TASKS, range(2000))
    evaluation = prompt_dataset(TRAIN_TASKS, evaluation_seeds(8))
    factory = WorkflowEnvFactory(args.server, token=args.token)
    sessions = config.per_device_train_batch_size * config.gradient_accumulation_steps
    print(f"train {len(train)} prompts, evaluation {len(evaluation)}; {sessions} sessions per generation batch")
    if args.check:
        print(config.to_json_string())
        return

    from trl import GRPOTrainer

    trainer = GRPOTrainer(
        model=args.model,
        args=config,
        train_dataset=train,
        eval_dataset=evaluation,
        environment_factory=factory,
    )
    try:
        trainer.train()
        trainer.save_model()
    finally:
        factory.close()


if __name__ == "__main__":
    main()
