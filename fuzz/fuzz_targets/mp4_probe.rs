#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mayfly_media::fuzzing::mp4_probe(data));
