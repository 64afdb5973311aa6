// A file's text, as vite's `?raw` import gives it (workerd has no file system to read it from).
declare module "*?raw" {
	const text: string;
	export default text;
}
