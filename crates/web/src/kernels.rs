//! Which GPU kernels the worker runs, and why. Burn 0.22 chooses fusion and autotune when it is
//! compiled (`burn-cubecl`'s backend type changes under `cfg(feature = "fusion")`), so there is
//! no switch at run time: Trunk builds the worker twice, and the page starts one of them. Pure,
//! so the choice is tested natively.

use crate::protocol::DeviceInfo;

/// One of the two worker builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// One GPU dispatch per tensor operation, one fixed kernel per matmul: what works on a
    /// software adapter (SwiftShader), where the others fail shader validation.
    Plain,
    /// Burn's fusion (element-wise chains in one dispatch) and autotune (each matmul's kernel
    /// chosen by timing the candidates the first time a shape is met).
    Tuned,
}

/// Whether WebGPU offered an adapter to the page, and what kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterKind {
    /// No `navigator.gpu`, or no adapter: the CPU backend runs everything.
    Missing,
    Software,
    Hardware,
}

/// The worker the page starts and the words the Device panel shows for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub kernels: Kernels,
    pub reason: String,
}

impl Kernels {
    /// The name in `?kernels=` and in [`DeviceInfo::kernels`].
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Plain => "plain",
            Kernels::Tuned => "tuned",
        }
    }

    /// The loader Trunk writes beside the page for this build (index.html).
    pub fn loader(self) -> &'static str {
        match self {
            Kernels::Plain => "./hearth-worker_loader.js",
            Kernels::Tuned => "./hearth-worker-tuned_loader.js",
        }
    }

    /// The kernels this binary was compiled with.
    pub fn of_this_build() -> Kernels {
        if cfg!(feature = "tuned") {
            Kernels::Tuned
        } else {
            Kernels::Plain
        }
    }

    /// What the Device panel calls them.
    pub fn label(self) -> &'static str {
        match self {
            Kernels::Plain => "plain (one dispatch per operation)",
            Kernels::Tuned => "fused and autotuned",
        }
    }

    /// The build a [`Kernels::name`] names.
    pub fn parse(name: &str) -> Option<Kernels> {
        match name {
            "plain" => Some(Kernels::Plain),
            "tuned" => Some(Kernels::Tuned),
            _ => None,
        }
    }
}

/// The value of `kernels=` in a location's query string (`?a=1&kernels=plain`), if any.
pub fn requested(search: &str) -> Option<&str> {
    search.trim_start_matches('?').split('&').find_map(|pair| pair.strip_prefix("kernels="))
}

/// Chooses the worker: what the URL asks for when it names a build, else the tuned kernels on a
/// hardware adapter and the plain ones everywhere else (a software adapter, no WebGPU, or the CPU
/// backend forced, where no GPU kernel runs and the smaller download wins).
pub fn choose(requested: Option<&str>, force_cpu: bool, adapter: AdapterKind) -> Choice {
    let asked = requested.map(|name| (name, Kernels::parse(name)));
    let (kernels, reason) = match (asked, force_cpu, adapter) {
        (Some((name, Some(kernels))), _, _) => (kernels, format!("requested with ?kernels={name}")),
        (_, true, _) => {
            (Kernels::Plain, "the CPU backend was requested, which runs no GPU kernel".to_string())
        }
        (_, false, AdapterKind::Missing) => (Kernels::Plain, "there is no WebGPU adapter".to_string()),
        (_, false, AdapterKind::Software) => (
            Kernels::Plain,
            "chosen for a software adapter: there each new tensor shape would be tuned on the CPU, \
             which made the first tokens five times slower"
                .to_string(),
        ),
        (_, false, AdapterKind::Hardware) => (
            Kernels::Tuned,
            "chosen for a hardware adapter: on an NVIDIA H200 (Vulkan, the same WGSL kernels) they \
             trained 2.0–2.6× and generated 1.6–2.6× faster than the plain ones. Each new tensor shape \
             is tuned the first time it is met, so first steps are slower"
                .to_string(),
        ),
    };
    match asked {
        Some((name, None)) => {
            Choice { kernels, reason: format!("{reason} (?kernels={name} is not plain or tuned)") }
        }
        _ => Choice { kernels, reason },
    }
}

/// What the page does once the worker it started says which device it got: the tuned build that
/// fell back to the CPU because its WebGPU did not compute correctly is replaced by the plain
/// build, which may; `None` keeps the worker.
pub fn fallback(running: Kernels, force_cpu: bool, info: &DeviceInfo) -> Option<Choice> {
    if running != Kernels::Tuned || force_cpu || info.backend != "cpu" {
        return None;
    }
    let why = info.fallback_reason.as_deref().unwrap_or("its WebGPU device did not start");
    Some(Choice {
        kernels: Kernels::Plain,
        reason: format!(
            "the fused and autotuned kernels failed on this adapter ({why}), so the plain ones run"
        ),
    })
}

/// The same after the tuned worker crashed (a kernel the browser would not build is a CubeCL
/// panic): the plain build replaces it rather than the same build again, and restores the last
/// checkpoint as any restarted worker does.
pub fn fallback_after_crash(running: Kernels, why: &str) -> Option<Choice> {
    (running == Kernels::Tuned).then(|| Choice {
        kernels: Kernels::Plain,
        reason: format!("the fused and autotuned worker stopped ({why}), so the plain one runs"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(backend: &str, reason: Option<&str>) -> DeviceInfo {
        DeviceInfo {
            backend: backend.into(),
            fallback_reason: reason.map(Into::into),
            ..DeviceInfo::default()
        }
    }

    #[test]
    fn hardware_gets_the_tuned_kernels_and_the_rest_the_plain_ones() {
        assert_eq!(choose(None, false, AdapterKind::Hardware).kernels, Kernels::Tuned);
        assert_eq!(choose(None, false, AdapterKind::Software).kernels, Kernels::Plain);
        assert_eq!(choose(None, false, AdapterKind::Missing).kernels, Kernels::Plain);
        assert_eq!(choose(None, true, AdapterKind::Hardware).kernels, Kernels::Plain);
        assert!(choose(None, false, AdapterKind::Software).reason.contains("software adapter"));
    }

    #[test]
    fn the_url_wins_and_a_wrong_name_is_said() {
        let asked = choose(requested("?backend=cpu&kernels=tuned"), true, AdapterKind::Software);
        assert_eq!(asked.kernels, Kernels::Tuned);
        assert_eq!(asked.reason, "requested with ?kernels=tuned");
        assert_eq!(choose(requested("kernels=plain"), false, AdapterKind::Hardware).kernels, Kernels::Plain);
        let wrong = choose(requested("?kernels=fast"), false, AdapterKind::Hardware);
        assert_eq!(wrong.kernels, Kernels::Tuned);
        assert!(wrong.reason.ends_with("(?kernels=fast is not plain or tuned)"), "{}", wrong.reason);
        assert_eq!(requested("?test-hooks"), None);
    }

    #[test]
    fn a_tuned_worker_without_webgpu_is_replaced_by_the_plain_one() {
        let wrong = info("cpu", Some("WebGPU computed wrong results (1²+2²+3²+4² gave [0.0])"));
        let back = fallback(Kernels::Tuned, false, &wrong).expect("falls back");
        assert_eq!(back.kernels, Kernels::Plain);
        assert!(back.reason.contains("gave [0.0]"), "{}", back.reason);
        // The plain worker is the last resort; a forced CPU backend or a working WebGPU keep it.
        assert_eq!(fallback(Kernels::Plain, false, &wrong), None);
        assert_eq!(fallback(Kernels::Tuned, true, &wrong), None);
        assert_eq!(fallback(Kernels::Tuned, false, &info("webgpu", None)), None);
        assert_eq!(fallback_after_crash(Kernels::Tuned, "trap").map(|c| c.kernels), Some(Kernels::Plain));
        assert_eq!(fallback_after_crash(Kernels::Plain, "trap"), None);
    }

    #[test]
    fn each_build_has_its_loader() {
        assert_eq!(Kernels::of_this_build(), Kernels::Plain, "the native tests build neither worker feature");
        assert_ne!(Kernels::Plain.loader(), Kernels::Tuned.loader());
    }
}
