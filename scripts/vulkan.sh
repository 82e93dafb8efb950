#!/usr/bin/env bash
# Installs a Vulkan driver when the machine has none, so `hearth --device wgpu` and its tests have
# an adapter: Debian's mesa-vulkan-drivers, whose lavapipe is a CPU emulating a GPU (like the
# browser tests' SwiftShader: correct, slow). A machine with a GPU driver already has an ICD and
# keeps it.
set -euo pipefail

icds=$(ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json 2>/dev/null || true)
if [[ -z "$icds" ]]; then
    echo "==> installing Debian's mesa-vulkan-drivers (a Vulkan driver for --device wgpu)"
    sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get install -y mesa-vulkan-drivers >/dev/null 2>&1 \
        || { $sudo apt-get update >/dev/null && $sudo apt-get install -y mesa-vulkan-drivers >/dev/null; }
fi
