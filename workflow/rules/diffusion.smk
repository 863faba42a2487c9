rule train_diffusion:
    input:
        manifest=rules.manifest.output.manifest,
        split=rules.split.output.split,
        init=fine_tuning_start,
        class_list=conditioning_classes,
    output:
        model=directory(f"{R}/diffusion/{{split}}/model"),
    log:
        log_for("train_diffusion", "{split}"),
    benchmark:
        benchmark_for("train_diffusion", "{split}")
    priority: 1  # the chain to the generated clips first: the generating arms' classifiers wait on it
    conda:
        "../../envs/diffaug.yaml"
    threads: THREADS["train_diffusion"]
    resources:
        **resources_for("train_diffusion", mem_mb=8000, runtime=240),
        gpu=gpus("diffusion"),
    params:
        diffusion=diffusion_params(WRITTEN["diffusion"]),
    script:
        "../../scripts/train_diffusion.py"


rule import_pretrained:
    output:
        model=directory(f"{R}/diffusion/pretrained/model"),
    log:
        log_for("import_pretrained"),
    benchmark:
        benchmark_for("import_pretrained")
    localrule: True
    conda:
        "../../envs/diffaug.yaml"
    threads: 1
    resources:
        **resources_for("import_pretrained", mem_mb=4000, runtime=60),
    params:
        **pretrained_params(WRITTEN["diffusion"]),
    script:
        "../../scripts/import_pretrained.py"
