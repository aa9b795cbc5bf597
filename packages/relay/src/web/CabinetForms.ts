/**
 * The cabinet's small form pieces: the hidden CSRF field every form carries, and a one-button form.
 */
import { escapeHtml } from "./CabinetPage.js"

export const csrfField = (csrf: string) => `<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">`

/** A one-button form posting `fields` to `action`. */
export const button = (csrf: string, action: string, label: string, fields: Record<string, string> = {}) =>
  `<form class="inline" method="post" action="${action}">${csrfField(csrf)}${Object.entries(fields)
    .map(([k, v]) => `<input type="hidden" name="${k}" value="${escapeHtml(v)}">`)
    .join("")}<button type="submit">${escapeHtml(label)}</button></form>`
