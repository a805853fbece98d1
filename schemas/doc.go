// Package schemas owns the schema registry's rules: parsing and compiling a
// JSON Schema (draft 2020-12, through santhosh-tekuri/jsonschema) within
// bounds, the fields a schema gives a dataset, the compatibility modes with
// Confluent Schema Registry's meaning, the structural checker that explains
// every incompatibility, and the cache of compiled validators.
//
// # Compatibility
//
// A mode names which direction must hold between a candidate schema and the
// subject's earlier versions:
//
//   - BACKWARD: consumers on the new schema can read data written with the
//     old one: every instance valid under old is valid under new.
//   - FORWARD: consumers still on the old schema can read data written with
//     the new one: every instance valid under new is valid under old. This
//     is the default, so a provider evolving a schema never breaks existing
//     consumers.
//   - FULL: both. NONE: no check. The _TRANSITIVE variants check against
//     every earlier version, the others against the latest only.
//
// The checker proves "every instance of A is an instance of B" structurally,
// over the keywords that matter for records: type, properties, required,
// additionalProperties, enum, const, items, minimum/maximum (and the
// exclusive forms), minLength/maxLength, minItems/maxItems, pattern, format
// and local $ref. Any other keyword must be identical on both sides; if it
// is not, the verdict is "incompatible: cannot prove", with the reason.
//
// # Content model
//
// JSON Schema's content model is open: without "additionalProperties": false
// an object may carry any property with any value. Adding an optional,
// typed property to an open schema is therefore FORWARD compatible (new
// data still satisfies the old schema) but not BACKWARD compatible (old
// data may already carry that property with a value the new type refuses).
// With "additionalProperties": false on the old schema the verdicts swap.
// xhub keeps the standard open model rather than silently closing schemas;
// the checker applies the rule exactly and its explanation names it.
//
// # Bounds
//
// A schema is at most MaxSchemaBytes, MaxDepth levels and MaxFields
// top-level properties; it has no remote reference, no $ref cycle that
// stays on one value, and no key repeated in an object. Its expanded
// reference fan-out, the schema nodes validating could enter along one
// path into a record, is at most MaxFanOut (fanout.go explains the
// count). A record is decoded with the same decoder, which refuses a
// repeated key naming its JSON pointer. Validation spends a Budget of
// steps (schema nodes entered) and stops when its context is done; the
// validator offers no hook for either but vocabularies, so budget.go
// counts through one.
package schemas
