//! The training path (DESIGN §3 step 2): real models trained with candle on CPU (CUDA behind
//! the `gpu` feature), published as 4-bit updates with error feedback.

pub mod data;
pub mod encoder;
pub mod net;
pub mod plot;
pub mod pretrained;
pub mod reference;
pub mod task;
pub mod trainer;
pub mod transformer;

pub use net::TrainError;
pub use task::TaskConfig;
pub use trainer::{RoundOutput, Trainer};
