//! The statistics file (HDF5). Being written.
