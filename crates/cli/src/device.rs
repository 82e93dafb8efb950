//! Backend choice for the native binary.

use burn::tensor::Device;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Backend {
    Flex,
    Ndarray,
}

impl Backend {
    // NdArray is deprecated in Burn 0.22 (Flex replaces it) but still a supported choice.
    #[allow(deprecated)]
    pub fn device(self) -> Device {
        match self {
            Backend::Flex => Device::flex(),
            Backend::Ndarray => Device::ndarray(),
        }
    }
}
