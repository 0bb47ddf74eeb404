// Imported first by a bench that must run on node:crypto alone (bench/mesh-sim.ts: a simulated
// run depends on its seed alone, and libsodium's keys and worker-pool timing come from outside
// its virtual world). Module evaluation follows import order, so this runs before src/ loads.
process.env.SIGNET_NO_SODIUM = '1';
