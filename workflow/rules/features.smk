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
    threads: THREADS["features"]
    resources:
        **resources_for("features", mem_mb=4000, runtime=120),
    params:
        features=FEATURES,
    script:
        "../../scripts/features.py"


rule features_generated:
    input:
        class_list=rules.manifest.output.class_list,
        classes=decoded_classes,
    output:
        features=f"{R}/features/{{split}}/set{{generated_set}}/{{generator}}.safetensors",
    log:
        log_for("features_generated", "{split}/set{generated_set}/{generator}"),
    benchmark:
        benchmark_for("features_generated", "{split}/set{generated_set}/{generator}")
    wildcard_constraints:
        generator="|".join(DECODED),
    priority: 1  # as train_diffusion
    conda:
        "../../envs/diffaug.yaml"
    threads: 1  # a split's generated clips, few beside the real ones: on one core, beside the classifiers
    resources:
        **resources_for("features_generated", mem_mb=4000, runtime=60),
    params:
        features=FEATURES,
    script:
        "../../scripts/features_generated.py"


rule features_mel_average:
    input:
        class_list=rules.manifest.output.class_list,
        real=rules.features.output.features,
        pairs=rules.pairs.output.pairs,
    output:
        features=f"{R}/features/{{split}}/set{{generated_set}}/mel_average.safetensors",
    log:
        log_for("features_mel_average", "{split}/set{generated_set}"),
    benchmark:
        benchmark_for("features_mel_average", "{split}/set{generated_set}")
    conda:
        "../../envs/diffaug.yaml"
    threads: 1
    resources:
        **resources_for("features_mel_average", mem_mb=4000, runtime=30),
    params:
        features=FEATURES,
    script:
        "../../scripts/features_mel_average.py"


rule features_round_trip:
    input:
        unpack(mel_image),
        manifest=rules.manifest.output.manifest,
        class_list=rules.manifest.output.class_list,
        pairs=rules.pairs.output.pairs,
    output:
        features=f"{R}/features/{{split}}/set{{generated_set}}/round_trip.safetensors",
    log:
        log_for("features_round_trip", "{split}/set{generated_set}"),
    benchmark:
        benchmark_for("features_round_trip", "{split}/set{generated_set}")
    conda:
        "../../envs/diffaug.yaml"
    threads: 1
    resources:
        **resources_for("features_round_trip", mem_mb=4000, runtime=60),
    params:
        features=FEATURES,
        seed=config["generate"]["seed"],
        mel=MEL,
    script:
        "../../scripts/features_round_trip.py"
