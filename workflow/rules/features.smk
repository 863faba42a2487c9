rule features:
    input:
        manifest=rules.manifest.output.manifest,
    output:
        features=f"{R}/features/real.safetensors",
    log:
        log_for("features"),
    benchmark:
        benchmark_for("features")
    conda:
        "../../envs/diffaug.yaml"
    threads: THREADS.get("features", 1)
    resources:
        **resources_for("features", mem_mb=4000, runtime=120),
    params:
        features=config["features"],
    script:
        "../../scripts/features.py"


rule features_generated:
    input:
        classes=expand(f"{R}/generated/{{{{split}}}}/{{class_name}}", class_name=CLASSES),
    output:
        features=f"{R}/features/{{split}}/generated.safetensors",
    log:
        log_for("features_generated", "{split}"),
    benchmark:
        benchmark_for("features_generated", "{split}")
    conda:
        "../../envs/diffaug.yaml"
    threads: THREADS.get("features", 1)
    resources:
        **resources_for("features_generated", mem_mb=4000, runtime=60),
    params:
        features=config["features"],
    script:
        "../../scripts/features_generated.py"


rule features_mel_average:
    input:
        manifest=rules.manifest.output.manifest,
        split=rules.split.output.split,
        real=rules.features.output.features,
    output:
        features=f"{R}/features/{{split}}/mel_average.safetensors",
    log:
        log_for("features_mel_average", "{split}"),
    benchmark:
        benchmark_for("features_mel_average", "{split}")
    conda:
        "../../envs/diffaug.yaml"
    threads: 1
    resources:
        **resources_for("features_mel_average", mem_mb=4000, runtime=30),
    params:
        pairs=PAIRS,
    script:
        "../../scripts/features_mel_average.py"


rule features_round_trip:
    input:
        manifest=rules.manifest.output.manifest,
        split=rules.split.output.split,
        model=diffusion_model,
    output:
        features=f"{R}/features/{{split}}/round_trip.safetensors",
    log:
        log_for("features_round_trip", "{split}"),
    benchmark:
        benchmark_for("features_round_trip", "{split}")
    conda:
        "../../envs/diffaug.yaml"
    threads: 1
    resources:
        **resources_for("features_round_trip", mem_mb=4000, runtime=60),
    params:
        pairs=PAIRS,
        features=config["features"],
    script:
        "../../scripts/features_round_trip.py"
