// @generated

pub mod health;
pub mod messenger;
