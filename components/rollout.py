"""Component: rollout + reward, profiling how often a policy solves each training prompt."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from modomodo.components import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def rollout_reward(
    config: dict,
    pushgateway: str,
    gpus: int,
    prompts_per_domain: int,
    data: Input[Dataset],
    model: Input[Model],
    profile: Output[Dataset],
    pass_rates: Output[Metrics],
):
    """Sample G completions a prompt, score them with the domain rewards, and report per-prompt
    reward statistics, per-domain pass rates and the prompts always or never solved
    (``stages.rollout_stage``; ``prompts_per_domain`` 0 profiles every training prompt)."""
    from pathlib import Path

    from modomodo import stages
    from modomodo.components import runtime

    cfg = runtime.experiment_config(config, pushgateway)
    runtime.check_gpus(gpus)
    run_id = f"{cfg.name}-rollout-{runtime.fingerprint(config, prompts_per_domain, model.uri)}"
    report = stages.rollout_stage(
        cfg,
        Path(data.path),
        Path(model.path),
        Path(profile.path),
        run_id=run_id,
        prompts_per_domain=prompts_per_domain,
    )
    runtime.log_metrics(
        pass_rates, {f"pass_rate_{domain}": rate for domain, rate in report.pass_rates().items()}
    )
    # A Metrics artifact's metadata is its table of scalars in the KFP UI, so provenance goes on the profile.
    runtime.annotate(
        profile,
        cfg,
        run_id=run_id,
        num_generations=report.num_generations,
        zero_signal=report.zero_signal_per_domain(),
    )
