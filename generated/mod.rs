// @generated

pub mod health;
pub mod messenger;
pub mod reflection_v1;
pub mod reflection_v1alpha;
