import cluster from 'node:cluster'

/** Set by the evluaserver primary for its workers: the port they share. */
export const WORKER_PORT_ENV = 'EVLUA_WORKER_PORT'

/**
 * A worker forked by evluaserver's own primary. A cluster worker of another manager (pm2 cluster
 * mode) runs as a plain single process, stopped by signals as usual.
 */
export const isEvluaWorker = (): boolean => cluster.isWorker && process.env[WORKER_PORT_ENV] !== undefined
