"""``bench run --dry-run``: each planned cell's state (done / todo / stale: what changed / failed), then what the
cells still to run will cost (:mod:`bench.grid.cost`: images to encode, cache bytes, images to generate,
training steps, text-tower prompt passes, record bytes), per dataset and in total; with ``--calibrate``, the
hours it will take on this device (:mod:`bench.grid.calibrate`, about a minute of measuring)."""

from __future__ import annotations


def dry_run(args, planned: list[tuple]) -> int:
    from bench.cell.datakey import dry_run_keys
    from bench.cell.plan import plan_cell, stale_reason
    from bench.grid.calibrate import PromptCounter, calibrate, estimate_hours
    from bench.grid.cost import data_sizes, format_cost, sweep_cost

    costs, calibration = [], []
    for cfg, cells, work_dir, _ in planned:
        data = dry_run_keys(cfg, work_dir)  # hashes the data only where a record of the same config exists
        todo = []
        for cell in cells:  # done: a rerun skips it; stale (config or data changed), failed, unreadable: rerun
            reason = stale_reason(cell.record_path(work_dir), plan_cell(cfg, cell), data) or "done"
            state, _, why = reason.partition(": ")
            print(f"{state}  {cell.dataset}  {cell.name}" + (f"  ({why})" if why else ""))
            if state != "done":
                todo.append(cell)
        print(f"{len(cells)} cells, {len(todo)} to run")
        eval_split = (cfg.get("runtime", {}) or {}).get("eval_split", "test")
        sizes = data_sizes(data.dataset, eval_split, data.load_split)
        try:
            classnames = data.load_split(eval_split).classnames
        except Exception:  # the data is not on disk: class names do not change counts or rates
            classnames = [f"class {i}" for i in range(sizes.n_classes)]
        costs.append(sweep_cost(cfg, todo, sizes, PromptCounter(classnames)))
        if args.calibrate and todo:
            plans = {}
            for cell in todo:
                plans.setdefault(cell.method, plan_cell(cfg, cell))
            device = args.device or "cpu"
            calibration.append(calibrate(cfg, costs[-1:], plans, classnames, device))
    hours = None
    if calibration:
        rates = {"device": calibration[0]["device"]}
        for key in ("encoder", "prompts_per_s", "train_prompts_per_s", "step_s", "generate_per_s"):
            rates[key] = {k: v for found in calibration for k, v in found[key].items()}
        hours = estimate_hours(costs, rates)
    print(format_cost(costs, hours))
    return 0
