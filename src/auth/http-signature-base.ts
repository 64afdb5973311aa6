/**
 * The signature base of RFC 9421 section 2.5, for the components the gateway's profile
 * knows (docs/design.md, "Scheme v2"). Structured values are serialized by `structured-headers`.
 */
import { type BareItem, type InnerList, type Item, serializeInnerList, serializeString } from "structured-headers";

/** Where the value of each covered component comes from (RFC 9421 section 2.2). */
export interface ComponentValues {
	/** `@method`: the method as the runtime gives it. */
	method: string;
	/** `@authority`: the host (and a non-default port), lowercased. */
	authority: string;
	/** `@path`: the URL's pathname byte for byte as sent. */
	path: string;
	/** `@query`: the query as sent, `?` included; `?` alone when there is none. */
	query: string;
	/** A header's value as the runtime gives it (trimmed, repeats joined by `, `), or null when absent. */
	header(name: string): string | null;
}

/** A `Signature-Input` member: the covered components as an inner list of strings, with the parameters in the order given. */
export function signatureInputMember(components: readonly string[], params: Iterable<[string, BareItem]>): InnerList {
	return [components.map((name): Item => [name, new Map()]), new Map(params)];
}

/** The `"@signature-params"` value: a `Signature-Input` member serialized as RFC 8941 does. */
export function signatureParams(member: InnerList): string {
	return serializeInnerList(member);
}

/**
 * One line `"<component>": <value>` per covered component in order, then
 * `"@signature-params": <params>`; joined by `\n`, no trailing newline.
 * Throws for a component it cannot give a value for (the profile refuses those first).
 */
export function signatureBase(components: readonly string[], params: string, values: ComponentValues): string {
	let base = "";
	for (const name of components) base += `${serializeString(name)}: ${componentValue(name, values)}\n`;
	return `${base}"@signature-params": ${params}`;
}

function componentValue(name: string, values: ComponentValues): string {
	switch (name) {
		case "@method":
			return values.method;
		case "@authority":
			return values.authority.toLowerCase();
		case "@path":
			return values.path;
		case "@query":
			return values.query === "" ? "?" : values.query;
	}
	if (name.startsWith("@")) throw new Error(`signatureBase: unsupported derived component ${name}`);
	const value = values.header(name);
	if (value === null) throw new Error(`signatureBase: the covered header ${name} is absent`);
	return value;
}

