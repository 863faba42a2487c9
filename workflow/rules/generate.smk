rule interpolate:
    input:
        manifest=rules.manifest.output.manifest,
        split=rules.split.output.split,
        model=diffusion_model,
    output:
        clips=directory(f"{R}/generated/{{split}}/{{class_name}}"),
    log:
        log_for("interpolate", "{split}/{class_name}"),
    benchmark:
        benchmark_for("interpolate", "{split}/{class_name}")
    conda:
        "../../envs/diffaug.yaml"
    threads: THREADS.get("interpolate", 2)
    resources:
        **resources_for("interpolate", mem_mb=8000, runtime=240),
        gpu=gpus("generate"),
    params:
        generate=GENERATION,
        output_rate=config["features"]["sample_rate"],
    script:
        "../../scripts/interpolate.py"


rule score_generated:
    input:
        features=unfiltered_features,
        weights=baseline_weights,
    output:
        scores=f"{R}/scores/{{split}}/{{source}}.csv",
    log:
        log_for("score_generated", "{split}/{source}"),
    benchmark:
        benchmark_for("score_generated", "{split}/{source}")
    conda:
        "../../envs/diffaug.yaml"
    threads: 1
    resources:
        **resources_for("score_generated", mem_mb=2000, runtime=10),
        gpu=gpus("classifier"),
    params:
        classifier=config["classifier"],
    script:
        "../../scripts/score_generated.py"


rule select_generated:
    input:
        features=f"{R}/features/{{split}}/generated.safetensors",
        scores=f"{R}/scores/{{split}}/diffusion.csv",
        classes=expand(f"{R}/generated/{{{{split}}}}/{{class_name}}", class_name=CLASSES),
    output:
        features=f"{R}/features/{{split}}/generated_kept.safetensors",
        pairs=f"{R}/generated/{{split}}/pairs.csv",
    log:
        log_for("select_generated", "{split}"),
    benchmark:
        benchmark_for("select_generated", "{split}")
    conda:
        "../../envs/diffaug.yaml"
    threads: 1
    resources:
        **resources_for("select_generated", mem_mb=2000, runtime=10),
    params:
        keep=config["generate"]["keep"],
    script:
        "../../scripts/select_generated.py"
