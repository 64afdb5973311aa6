import { type Dictionary, parseDictionary } from "structured-headers";

/**
 * A Structured Field dictionary parsed by `structured-headers`, with the member names as
 * written. RFC 8941 parsers keep only the last member of a repeated name (`sig1=:A:, sig1=:B:`,
 * or the same label on two header lines the runtime joined), so the names are read here too,
 * to tell a repeat from a single member. Null when the library does not parse the field (its
 * message can quote the field: never passed on).
 */
export function parseDictionaryWithNames(field: string): { dictionary: Dictionary; names: string[] } | null {
	let dictionary: Dictionary;
	try {
		dictionary = parseDictionary(field);
	} catch {
		return null;
	}
	const members = topLevelMembers(field);
	// As many members as distinct names (the common case, one member): the names are the keys.
	if (members.length === dictionary.size) return { dictionary, names: [...dictionary.keys()] };
	const names: string[] = [];
	try {
		for (const member of members) {
			// Each piece is one member the library already accepted as part of the whole field.
			const [name, ...more] = parseDictionary(member).keys();
			if (name === undefined || more.length > 0) return null;
			names.push(name);
		}
	} catch {
		return null;
	}
	return { dictionary, names };
}

/**
 * The indexes of a field's characters that stand outside strings (`"..."`, `\` escaping the
 * next character; display strings `%"..."` hold no `"` nor `\`). Outside strings, a comma can
 * only separate members (inner lists use spaces, parameters `;`), and a number is a number.
 */
function* outsideStrings(field: string): Generator<number> {
	let inString = false;
	for (let i = 0; i < field.length; i++) {
		const char = field[i];
		if (inString) {
			if (char === "\\") i++;
			else if (char === '"') inString = false;
		} else if (char === '"') {
			inString = true;
		} else {
			yield i;
		}
	}
}

/** The text of each top-level member of a field that parsed as a dictionary. */
function topLevelMembers(field: string): string[] {
	if (field.trim() === "") return [];
	const members: string[] = [];
	let start = 0;
	for (const i of outsideStrings(field)) {
		if (field[i] !== ",") continue;
		members.push(field.slice(start, i).trimStart());
		start = i + 1;
	}
	members.push(field.slice(start).trimStart());
	return members;
}

/**
 * The names of the parameters a field writes as a number the library does not serialize back
 * as written: a decimal (`;created=1700000000.0`), a leading zero (`;created=01700000000`) or a
 * negative zero (`;expires=-0`). The library reads `1.0` and `01` as the number 1 and serializes
 * it back as `1` (and `-0` as `0`), so the
 * signature base would be the same as for the integer a client signed: a third party could
 * rewrite the field and it would still verify. The profile's numbers are integers written
 * plainly; any other spelling is refused by name. Strings are skipped (a `tag` may hold any text).
 */
export function respelledNumbers(field: string): Set<string> {
	return new Set([...withoutStrings(field).matchAll(/;\s*([a-z*][a-z0-9_.*-]*)=(?:-?(?:[0-9]+\.|0[0-9])|-0(?![0-9]))/g)].map((match) => match[1]!));
}

/**
 * The names of the parameters a field writes more than once (`;created=1;created=2`). The
 * library keeps the last, so the client's signature base (with both, or the first) is not
 * the one rebuilt here: refused by name, as a fault of the field, rather than as a bad
 * signature. Strings are skipped; use it where parameters can only stand in one place.
 */
export function repeatedParameters(field: string): Set<string> {
	const seen = new Set<string>();
	const repeated = new Set<string>();
	for (const [, name] of withoutStrings(field).matchAll(/;\s*([a-z*][a-z0-9_.*-]*)/g)) {
		if (seen.has(name!)) repeated.add(name!);
		seen.add(name!);
	}
	return repeated;
}

/** The field with each string's content left out (a mark in its place, so text on both sides never joins). */
function withoutStrings(field: string): string {
	let text = "";
	let last = -1;
	for (const i of outsideStrings(field)) {
		if (i !== last + 1) text += '""';
		text += field[i];
		last = i;
	}
	return text;
}
