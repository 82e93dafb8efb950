#!/usr/bin/env python3
"""Continue a run handed off by Hearth (`hearth handoff`) with Hugging Face Trainer.

    python train_hf.py DIR                                   # one process: CPU or one GPU
    accelerate launch --num_processes K train_hf.py DIR      # K processes (or torchrun --nproc_per_node K)

DIR is the hand-off directory (handoff.json, checkpoint-N/, data/). The run resumes from
checkpoint-N with its weights, AdamW moments, schedule and step, draws the same batches in the
same order, with the same global batch on any number of processes (gradient accumulation makes
up the rest), clips and decays as Hearth does, and logs every step's loss to DIR/hf_losses.jsonl
(and evaluations, in Hearth's units: the mean of the fixed evaluation batches' losses). It
saves Trainer checkpoints (DIR/checkpoint-M) at Hearth's evaluation interval; `hearth train
--resume DIR/checkpoint-M` will bring one back.

Needs torch, transformers (5.x) and pyarrow.
"""
import argparse
import json
import math
import os

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, SequentialSampler
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, Trainer, TrainerCallback, TrainingArguments


def learning_rate(step, s):
    """Hearth's LrSchedule.at: the rate of update `step` (0-based)."""
    if step < s["warmup"]:
        return s["lr"] * (step + 1) / (s["warmup"] + 1)
    if step >= s["decay_steps"]:
        return s["min_lr"]
    progress = (step - s["warmup"]) / max(s["decay_steps"] - s["warmup"], 1)
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress)) if s["decay"] == "cosine" else 1.0 - progress
    return s["min_lr"] + coeff * (s["lr"] - s["min_lr"])


def lists(path, column):
    """A parquet file's list column as one int64 array per row."""
    data = pq.read_table(path).column(column).combine_chunks()
    values = data.values.to_numpy().astype(np.int64)
    offsets = data.offsets.to_numpy()
    return [values[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def examples(path, causal):
    """Rows as examples: a causal row of context + 1 tokens is its inputs (all but the last) and
    labels (all but the first); a masked row is its corrupted inputs and labels (-100: none)."""
    if causal:
        return [{"input_ids": torch.from_numpy(r[:-1]), "labels": torch.from_numpy(r[1:])} for r in lists(path, "input_ids")]
    return [{"input_ids": torch.from_numpy(x), "labels": torch.from_numpy(y)}
            for x, y in zip(lists(path, "input_ids"), lists(path, "labels"))]


class Ordered(Dataset):
    """The rows in the order Hearth's steps draw them."""

    def __init__(self, rows, order):
        self.rows, self.order = rows, order

    def __len__(self):
        return len(self.order)

    def __getitem__(self, i):
        return self.rows[self.order[i]]


def collate(items):
    return {key: torch.stack([item[key] for item in items]) for key in ("input_ids", "labels")}


def summed_loss(logits, labels):
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum")


def mean_loss(model, rows, batch_size):
    """Hearth's evaluation: the loss per prediction over all the evaluation rows."""
    total, count = 0.0, 0
    device = next(model.parameters()).device
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = collate(rows[start:start + batch_size])
            labels = batch["labels"].to(device)
            total += summed_loss(model(input_ids=batch["input_ids"].to(device)).logits, labels).item()
            count += int(labels.ne(-100).sum())
    return total / count


class HandoffTrainer(Trainer):
    def __init__(self, *args, meta, **kwargs):
        super().__init__(*args, **kwargs)
        self.meta = meta
        self.micro_losses = []
        # Each micro-batch's loss is its summed loss over the predictions of the whole global
        # batch (Trainer counts them across the accumulation steps and the processes, then
        # multiplies by the processes, which DDP's mean of the gradients undoes): the global mean,
        # as Hearth's step takes it, even where micro-batches predict different numbers of tokens
        # (a masked LM). The labels are already shifted: Trainer must not count as if it shifted.
        self.model_accepts_loss_kwargs = True
        self._loss_shifts_labels = False

    def _get_train_sampler(self, *args, **kwargs):
        # The handed-off order; accelerate gives process k the batches k, k + K, …
        return SequentialSampler(self.train_dataset)

    def create_optimizer(self, *args, **kwargs):
        """AdamW over Hearth's parameter order: decayed parameters first, as Trainer groups them."""
        if self.optimizer is None:
            named = dict(self.model.named_parameters())
            names = self.meta["parameters"]
            missing = [n for n in names if n not in named]
            if missing or len(names) != len(named):
                raise SystemExit(f"the handed-off parameters do not match the model's: {missing[:5]}")
            a, k = self.meta["adamw"], self.meta["decayed_parameters"]
            groups = [{"params": [named[n] for n in names[:k]], "weight_decay": a["weight_decay"]}]
            if k < len(names):
                groups.append({"params": [named[n] for n in names[k:]], "weight_decay": 0.0})
            self.optimizer = torch.optim.AdamW(
                groups, lr=self.meta["schedule"]["lr"], betas=(a["beta1"], a["beta2"]), eps=a["eps"]
            )
        return self.optimizer

    def create_scheduler(self, num_training_steps, optimizer=None):
        if self.lr_scheduler is None:
            s = self.meta["schedule"]
            factor = (lambda step: learning_rate(step, s) / s["lr"]) if s["lr"] > 0 else (lambda step: 0.0)
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer or self.optimizer, factor)
        return self.lr_scheduler

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        count = num_items_in_batch if num_items_in_batch is not None else labels.ne(-100).sum()
        loss = summed_loss(outputs.logits, labels) / count
        self.micro_losses.append(loss.detach())
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        return (loss, outputs) if return_outputs else loss


class Log(TrainerCallback):
    """Every step's loss (the mean over the global batch) and Hearth's evaluations."""

    def __init__(self, trainer, out, eval_rows):
        self.trainer, self.out, self.eval_rows = trainer, out, eval_rows

    def on_step_end(self, args, state, control, **kwargs):
        t = self.trainer
        # Each micro-batch's share of the global mean: their sum over the processes is the step's.
        loss = torch.stack(t.micro_losses).sum()
        t.micro_losses.clear()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(loss)
        step = state.global_step
        line = {"event": "step", "step": step, "loss": loss.item(), "lr": learning_rate(step - 1, t.meta["schedule"])}
        lines = [line]
        every = t.meta["eval_every"]
        if step % every == 0 or step == state.max_steps:
            model = t.accelerator.unwrap_model(t.model)
            model.eval()
            report = {"event": "eval", "step": step}
            for name, rows in self.eval_rows.items():
                report[name] = mean_loss(model, rows, t.meta["batch_size"])
            model.train()
            lines.append(report)
        # (The state loaded from the checkpoint says process zero everywhere: ask the trainer.)
        if t.is_world_process_zero():
            with open(self.out, "a") as f:
                for entry in lines:
                    f.write(json.dumps(entry) + "\n")
                    print(json.dumps(entry), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="the hand-off directory")
    ap.add_argument("--per-device-batch", type=int, help="rows per process per micro-step (default: the global batch over the processes)")
    ap.add_argument("--steps", type=int, help="stop after this many steps in all (at most the hand-off's)")
    a = ap.parse_args()
    meta = json.load(open(os.path.join(a.dir, "handoff.json")))
    if meta.get("format") != 1:
        raise SystemExit(f"handoff.json format {meta.get('format')} is not one this script reads (1)")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    batch = meta["batch_size"]
    per_device = a.per_device_batch or batch // world
    if per_device < 1 or batch % (per_device * world):
        raise SystemExit(f"the global batch {batch} is not {world} processes × a whole number of micro-batches of {per_device}")
    accumulation = batch // (per_device * world)
    steps = min(a.steps or meta["steps"], meta["steps"])

    data = os.path.join(a.dir, "data")
    causal = meta["objective"] == "causal"
    if causal:
        # The windows and the order of steps 1…T: Trainer skips the steps already taken.
        rows = examples(os.path.join(data, "train.parquet"), True)
        order = pq.read_table(os.path.join(data, "order.parquet")).column("window").to_numpy()
    else:
        # The masked rows of the steps still to come, in order.
        rows = examples(os.path.join(data, "masked_train.parquet"), False)
        order = np.arange(len(rows))
    eval_rows = {"train_loss": examples(os.path.join(data, "eval_train.parquet"), causal)}
    if os.path.exists(os.path.join(data, "eval_validation.parquet")):
        eval_rows["val_loss"] = examples(os.path.join(data, "eval_validation.parquet"), causal)

    checkpoint = os.path.join(a.dir, meta["checkpoint"])
    auto = AutoModelForCausalLM if causal else AutoModelForMaskedLM
    model = auto.from_pretrained(checkpoint, dtype=torch.float32)
    args = TrainingArguments(
        output_dir=a.dir,
        max_steps=steps,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation,
        learning_rate=meta["schedule"]["lr"],
        max_grad_norm=meta["grad_clip"],
        logging_steps=1,
        save_strategy="steps",
        save_steps=meta["eval_every"],
        report_to="none",
        seed=meta["seed"],
        remove_unused_columns=False,
        dataloader_drop_last=False,
        # A masked hand-off holds only the steps still to come: nothing to skip.
        ignore_data_skip=not causal,
        average_tokens_across_devices=True,
        # Without a GPU, several processes are CPU DDP over gloo (Trainer's default would run
        # each process alone).
        use_cpu=not torch.cuda.is_available(),
        ddp_backend="gloo" if world > 1 and not torch.cuda.is_available() else None,
    )
    trainer = HandoffTrainer(
        model=model, args=args, train_dataset=Ordered(rows, order), data_collator=collate, meta=meta
    )
    trainer.add_callback(Log(trainer, os.path.join(a.dir, "hf_losses.jsonl"), eval_rows))
    trainer.train(resume_from_checkpoint=checkpoint)


if __name__ == "__main__":
    main()
