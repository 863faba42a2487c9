rule interpolate:
    input:
        manifest=rules.manifest.output.manifest,
        split=rules.split.output.split,
        model=diffusion_model,
    output:
        clips=directory(f"{R}/generated/{{split}}/{{class_name}}"),
    params:
        generate=config["generate"],
        output_rate=config["features"]["sample_rate"],
    log:
        log_for("interpolate", "/{split}/{class_name}"),
    benchmark:
        benchmark_for("interpolate", "/{split}/{class_name}")
    threads: THREADS.get("interpolate", 2)
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=1,
    conda:
        "../../envs/diffaug.yaml"
    script:
        "../../scripts/interpolate.py"
