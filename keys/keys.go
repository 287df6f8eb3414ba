// Package keys is the pure logic of KeyDesk's hardware security keys: the
// lifecycle (statuses, actions, reasons and the one table of allowed
// transitions), activation codes (generation, parsing, keyed hashing and the
// three-attempt rule) and the protection of secrets at rest (the master key
// file, sub-keys derived from it, and per-key master secrets sealed with
// XChaCha20-Poly1305).
//
// The package has no SQL, no UI and no device I/O. The store (package store)
// keeps what this package decides; the application layer (package app) reads
// a key inside one store transaction, asks this package what an action does
// (Apply, Effects, CheckCode), writes the key and its audit entry in that same
// transaction, and so every caller goes through the same table.
//
// Secrets handled here (activation codes, master secrets, the master key)
// never appear in errors, and Code and MasterKey redact themselves in logs
// (log/slog) and Go-syntax formatting (%#v); MasterKey redacts itself under
// every fmt verb. Only Code.String shows a code, for the one screen that
// hands it to the employee.
package keys
