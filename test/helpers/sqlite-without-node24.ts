// Preloaded (--import) by sqlite-node22.test.ts: node:sqlite as Node 22 has it, without the
// authorizer and array rows that evsqlite uses on Node 24.
import { DatabaseSync, StatementSync } from 'node:sqlite'

delete (DatabaseSync.prototype as { setAuthorizer?: unknown }).setAuthorizer
delete (StatementSync.prototype as { setReturnArrays?: unknown }).setReturnArrays
