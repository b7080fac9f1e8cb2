const charCodeAt = String.prototype.charCodeAt

/**
 * s.charCodeAt(i) without the method lookup on s: strings reach the bridge in several internal
 * forms (literals, parser output, slices), which makes `s.charCodeAt` a property load V8 does not
 * inline in optimized code (a LoadIC call per character).
 */
export function charCode (s: string, i: number): number {
  return charCodeAt.call(s, i)
}

const indexOfString = String.prototype.indexOf
const sliceString = String.prototype.slice

/** s.indexOf(search, from), without the method lookup on s (see charCode). */
export function indexOf (s: string, search: string, from = 0): number {
  return indexOfString.call(s, search, from)
}

/** s.slice(start, end), without the method lookup on s (see charCode). */
export function slice (s: string, start: number, end?: number): string {
  return sliceString.call(s, start, end)
}
