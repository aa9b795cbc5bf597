/** `mvdan-sh` ships no types; `mvdan.ts` gives the parts the gate uses their shapes. */
declare module "mvdan-sh" {
  const module: { readonly syntax: any }
  export default module
}
