// The request/response boundary lives in src/shared (admin and the frontends use it too); the proxy re-exports it.
export type * from '../shared/http-types.ts';
