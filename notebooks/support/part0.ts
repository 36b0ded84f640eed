/** The Part 0 notebook's data: the course's three prompts (SPEC §1.0b). */
export const PART0_PROMPTS = ['an oil painting of a snowy mountain village', 'a man wearing a hat', 'a rocket ship'];
