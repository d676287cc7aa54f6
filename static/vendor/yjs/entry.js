// Entry for the vendored browser bundle: one copy of Yjs, the y-protocols sync helpers and
// the lib0 encoders they speak, exposed as window.GTWYjs.
import * as Y from "yjs";
import * as sync from "y-protocols/sync";
import * as encoding from "lib0/encoding";
import * as decoding from "lib0/decoding";

export { Y, sync, encoding, decoding };
