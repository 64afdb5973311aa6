/**
 * The member names of a JSON object's top level, in order, duplicates kept: `JSON.parse`
 * keeps only the last of two equal names, so a setting that must refuse a repeated name
 * (`HMAC_CLIENTS`) reads them here. `text` must already parse as a JSON object.
 */
export function topLevelKeys(text: string): string[] {
	const keys: string[] = [];
	let depth = 0;
	let expectingKey = false;
	for (let i = 0; i < text.length; i++) {
		const char = text[i];
		if (char === '"') {
			const end = closingQuote(text, i);
			if (depth === 1 && expectingKey) keys.push(decodeString(text.slice(i, end + 1)));
			expectingKey = false;
			i = end;
		} else if (char === "{" || char === "[") {
			depth++;
			expectingKey = char === "{" && depth === 1;
		} else if (char === "}" || char === "]") {
			depth--;
		} else if (char === "," && depth === 1) {
			expectingKey = true;
		}
	}
	return keys;
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
