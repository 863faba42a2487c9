rule pairs:
    input:
        manifest=rules.manifest.output.manifest,
        split=rules.split.output.split,
    output:
        pairs=f"{R}/pairs/{{split}}/set{{generated_set}}.csv",
    log:
        log_for("pairs", "{split}/set{generated_set}"),
    benchmark:
        benchmark_for("pairs", "{split}/set{generated_set}")
    localrule: True
    conda:
        "../../envs/diffaug.yaml"
    threads: 1
    resources:
        **resources_for("pairs", mem_mb=1000, runtime=10),
    params:
        pairs=PAIRS,
    script:
        "../../scripts/pairs.py"


rule interpolate:
    input:
        manifest=rules.manifest.output.manifest,
        pairs=rules.pairs.output.pairs,
        model=diffusion_model,
    output:
        clips=class_folders("generated"),
    log:
        log_for("interpolate", "{split}/set{generated_set}"),
    benchmark:
        benchmark_for("interpolate", "{split}/set{generated_set}")
    priority: 1  # as train_diffusion
    conda:
        "../../envs/diffaug.yaml"
    threads: THREADS["interpolate"]
    resources:
        **resources_for("interpolate", mem_mb=8000, runtime=240),
        gpu=gpus("generate"),
    params:
        generate=GENERATION,
        output_rate=config["features"]["sample_rate"],
    script:
        "../../scripts/interpolate.py"


rule reconstruct:
    input:
        manifest=rules.manifest.output.manifest,
        pairs=rules.pairs.output.pairs,
        model=diffusion_model,
    output:
        clips=class_folders("reconstructed"),
    log:
        log_for("reconstruct", "{split}/set{generated_set}"),
    benchmark:
        benchmark_for("reconstruct", "{split}/set{generated_set}")
    conda:
        "../../envs/diffaug.yaml"
    threads: THREADS["interpolate"]
    resources:
        **resources_for("reconstruct", mem_mb=8000, runtime=240),
        gpu=gpus("generate"),
    params:
        generate=RECONSTRUCTION,
        output_rate=config["features"]["sample_rate"],
    script:
        "../../scripts/reconstruct.py"


rule sample:
    input:
        manifest=rules.manifest.output.manifest,
        pairs=rules.pairs.output.pairs,
        model=diffusion_model,
    output:
        clips=class_folders("sampled"),
    log:
        log_for("sample", "{split}/set{generated_set}"),
    benchmark:
        benchmark_for("sample", "{split}/set{generated_set}")
    priority: 1  # as train_diffusion
    conda:
        "../../envs/diffaug.yaml"
    threads: THREADS["interpolate"]
    resources:
        **resources_for("sample", mem_mb=8000, runtime=240),
        gpu=gpus("generate"),
    params:
        generate=SAMPLING,
        output_rate=config["features"]["sample_rate"],
    script:
        "../../scripts/sample.py"


rule score_generated:
    input:
        class_list=rules.manifest.output.class_list,
        features=scored_features,
        pairs=rules.pairs.output.pairs,
        judges=judges,
    output:
        scores=f"{R}/scores/{{split}}/set{{generated_set}}/{{origin}}.csv",
    log:
        log_for("score_generated", "{split}/set{generated_set}/{origin}"),
    benchmark:
        benchmark_for("score_generated", "{split}/set{generated_set}/{origin}")
    wildcard_constraints:
        origin="|".join(["sources", *GENERATORS]),
    conda:
        "../../envs/diffaug.yaml"
    threads: 1
    resources:
        **resources_for("score_generated", mem_mb=2000, runtime=10),
        gpu=gpus("classifier"),
    params:
        classifier=CLASSIFIER,
    script:
        "../../scripts/score_generated.py"


rule select_generated:
    input:
        features=f"{R}/features/{{split}}/set{{generated_set}}/{{generator}}.safetensors",
        scores=f"{R}/scores/{{split}}/set{{generated_set}}/{{generator}}.csv",
        pairs=rules.pairs.output.pairs,
    output:
        features=f"{R}/features/{{split}}/set{{generated_set}}/{{generator}}_kept.safetensors",
        fates=f"{R}/scores/{{split}}/set{{generated_set}}/{{generator}}_kept.csv",
    log:
        log_for("select_generated", "{split}/set{generated_set}/{generator}"),
    benchmark:
        benchmark_for("select_generated", "{split}/set{generated_set}/{generator}")
    conda:
        "../../envs/diffaug.yaml"
    threads: 1
    resources:
        **resources_for("select_generated", mem_mb=2000, runtime=10),
    params:
        keep=config["generate"]["keep"],
    script:
        "../../scripts/select_generated.py"
