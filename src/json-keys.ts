/**
 * The member names of every JSON object in `text`, in order, duplicates kept: `JSON.parse`
 * keeps only the last of two equal names, so a setting that must refuse a repeated name
 * (`HMAC_CLIENTS`'s ids, a `CLIENT_LIMITS` entry's fields) reads them here. One list per
 * object, in the order the objects open: the first is the top level. `text` must already
 * parse as JSON.
 */
export function objectMemberNames(text: string): string[][] {
	const objects: string[][] = [];
	// For each open bracket: the names of the object it opened (null for an array).
	const open: (string[] | null)[] = [];
	let expectingKey = false;
	for (let i = 0; i < text.length; i++) {
		const char = text[i];
		if (char === '"') {
			const end = closingQuote(text, i);
			if (expectingKey) open.at(-1)!.push(decodeString(text.slice(i, end + 1)));
			expectingKey = false;
			i = end;
		} else if (char === "{") {
			const names: string[] = [];
			objects.push(names);
			open.push(names);
			expectingKey = true;
		} else if (char === "[") {
			open.push(null);
		} else if (char === "}" || char === "]") {
			open.pop();
		} else if (char === ",") {
			expectingKey = open.at(-1) !== null && open.length > 0;
		}
	}
	return objects;
}

/** The member names of a JSON object's top level, in order, duplicates kept. */
export function topLevelKeys(text: string): string[] {
	return objectMemberNames(text)[0] ?? [];
}

/** Whether some object in `text`, at any depth, names a member twice (`{"rpm": 1, "rpm": 2}`). */
export function repeatsAName(text: string): boolean {
	return objectMemberNames(text).some((names) => new Set(names).size !== names.length);
}

/** The index of the quote that closes the string opened at `start` (an escape skips its next character). */
function closingQuote(text: string, start: number): number {
	let end = start + 1;
	while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
	return end;
}

/** A JSON string literal's value (`\u0063` is `c`, so escapes cannot hide a repeated name). */
function decodeString(literal: string): string {
	const value: unknown = JSON.parse(literal);
	return typeof value === "string" ? value : "";
}
