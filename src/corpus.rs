//! The project's own text, generated from a seeded grammar: chat dialogues in many styles,
//! good demonstrations for SFT, and plain prose for the pretraining mix. Nothing here is copied
//! from elsewhere; every sentence is assembled from the word lists below.

use crate::rng::Rng;

pub const USER: &str = "<|user|>";
pub const ASSISTANT: &str = "<|assistant|>";
pub const END: &str = "<|end|>";
pub const SPECIAL_TOKENS: [&str; 3] = [USER, ASSISTANT, END];

/// A topic: what people ask about and what a good answer says.
pub struct Topic {
    pub name: &'static str,
    pub facts: [&'static str; 3],
    pub tips: [&'static str; 2],
    pub activity: &'static str,
}

pub const TOPICS: [Topic; 16] = [
    Topic {
        name: "tea",
        facts: [
            "tea is made from the leaves of a plant",
            "green tea has less caffeine than coffee",
            "tea tastes best with water that is hot but not boiling",
        ],
        tips: ["steep green tea for two or three minutes", "keep tea leaves in a dry dark jar"],
        activity: "make a good cup of tea",
    },
    Topic {
        name: "coffee",
        facts: ["coffee comes from roasted beans", "fresh beans give the best flavor", "coffee has more caffeine than tea"],
        tips: ["grind the beans just before you brew", "use clean cold water for brewing"],
        activity: "brew better coffee",
    },
    Topic {
        name: "bread",
        facts: ["bread needs flour, water, salt and yeast", "dough rises because yeast makes gas", "a hot oven gives bread a good crust"],
        tips: ["let the dough rest until it doubles", "bake the loaf until it sounds hollow"],
        activity: "bake bread at home",
    },
    Topic {
        name: "gardens",
        facts: ["most vegetables need six hours of sun", "good soil holds water and air", "tomatoes grow well in warm weather"],
        tips: ["water the plants early in the morning", "add compost to the soil each spring"],
        activity: "start a small garden",
    },
    Topic {
        name: "dogs",
        facts: ["dogs need a walk every day", "dogs learn best with short lessons", "a tired dog is a calm dog"],
        tips: ["reward your dog right after it listens", "keep fresh water near its bed"],
        activity: "train a puppy",
    },
    Topic {
        name: "cats",
        facts: ["cats sleep for most of the day", "cats like to scratch and climb", "a cat purrs when it feels safe"],
        tips: ["give your cat a post to scratch", "play with your cat for a few minutes each day"],
        activity: "keep a cat happy",
    },
    Topic {
        name: "the moon",
        facts: ["the moon goes around the earth once a month", "the moon has no air to breathe", "the moon shines with light from the sun"],
        tips: ["look at the moon with binoculars", "watch the moon on a clear night"],
        activity: "watch the moon",
    },
    Topic {
        name: "the ocean",
        facts: ["the ocean covers most of the earth", "ocean water is salty", "tides rise and fall twice a day"],
        tips: ["check the tide before you walk on the beach", "swim only where a guard can see you"],
        activity: "visit the sea safely",
    },
    Topic {
        name: "bicycles",
        facts: ["a bicycle turns leg power into speed", "tires need the right amount of air", "a chain needs a little oil"],
        tips: ["check the brakes before every ride", "wear a helmet on every ride"],
        activity: "ride a bicycle in the city",
    },
    Topic {
        name: "chess",
        facts: ["chess is played on a board of sixty four squares", "each side starts with sixteen pieces", "the game ends when a king is trapped"],
        tips: ["control the center of the board early", "move each piece once before you move one twice"],
        activity: "get better at chess",
    },
    Topic {
        name: "music",
        facts: ["music is built from rhythm and melody", "practice makes the hands remember", "a song can change how a room feels"],
        tips: ["practice a little every day", "play slowly before you play fast"],
        activity: "learn an instrument",
    },
    Topic {
        name: "rain",
        facts: ["rain falls when clouds get heavy with water", "plants drink the rain through their roots", "a rainbow needs sun and rain at once"],
        tips: ["carry an umbrella when the sky is gray", "collect rain in a barrel for the garden"],
        activity: "enjoy a rainy day",
    },
    Topic {
        name: "books",
        facts: ["reading builds a larger vocabulary", "a library lends books for free", "stories help us see through other eyes"],
        tips: ["read for twenty minutes before bed", "keep a list of books you want to read"],
        activity: "read more books",
    },
    Topic {
        name: "sleep",
        facts: ["adults need about eight hours of sleep", "a dark room helps the body rest", "screens late at night make sleep harder"],
        tips: ["go to bed at the same time each night", "keep the bedroom cool and quiet"],
        activity: "sleep better",
    },
    Topic {
        name: "mountains",
        facts: ["air gets thinner high on a mountain", "weather on a mountain can change fast", "mountain paths are steep and rocky"],
        tips: ["start a hike early in the day", "carry water and a warm jacket"],
        activity: "plan a mountain hike",
    },
    Topic {
        name: "birds",
        facts: ["birds have hollow bones that help them fly", "many birds fly south in winter", "birds sing to talk to each other"],
        tips: ["put seeds out in the morning", "sit still and listen for their songs"],
        activity: "watch birds in the park",
    },
];

/// How a response is written. The labelers of the alignment issue rank by what these make visible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// On topic, polite, warm, a fact and a tip.
    Helpful,
    /// One short clause, nothing more.
    Curt,
    /// On topic but insulting.
    Rude,
    /// About some other topic.
    OffTopic,
    /// Repeats itself and wanders.
    Rambling,
    /// On topic and correct, but long.
    Long,
    /// On topic, in a gloomy voice.
    Gloomy,
    /// On topic, in a delighted voice.
    Cheerful,
}

pub const STYLES: [Style; 8] =
    [Style::Helpful, Style::Curt, Style::Rude, Style::OffTopic, Style::Rambling, Style::Long, Style::Gloomy, Style::Cheerful];

/// What a demonstration may look like: on topic and coherent, in any tone or length.
/// SFT on these teaches the format and drops the broken answers (rude, off topic, rambling) while
/// keeping a spread of tones and lengths for a labeler to choose between; preferring one of them is
/// the reward model's job, not SFT's.
pub const DEMONSTRATION_STYLES: [Style; 5] = [Style::Helpful, Style::Curt, Style::Long, Style::Gloomy, Style::Cheerful];

/// Words that mark politeness, rudeness and mood; the labelers look for them.
pub const POLITE_WORDS: [&str; 8] = ["please", "thank", "happy to help", "hope this helps", "good question", "sure", "of course", "glad"];
pub const RUDE_WORDS: [&str; 8] = ["stupid", "silly", "obviously", "whatever", "figure it out", "waste of my time", "ugh", "boring"];
pub const CHEERFUL_WORDS: [&str; 8] = ["lovely", "wonderful", "delightful", "fun", "great", "joy", "bright", "happy"];
pub const GLOOMY_WORDS: [&str; 8] = ["sadly", "gloomy", "nothing lasts", "dull", "grim", "tired", "pointless", "gray"];

const OPENERS_POLITE: [&str; 4] = ["Sure!", "Of course.", "Good question.", "Happy to help."];
const CLOSERS_POLITE: [&str; 3] = ["I hope this helps.", "Thank you for asking.", "Glad to help."];
const OPENERS_RUDE: [&str; 4] = ["Ugh, obviously.", "What a silly question.", "Whatever.", "This is a waste of my time."];
const CLOSERS_RUDE: [&str; 3] = ["Figure it out yourself.", "Stop asking stupid things.", "Boring."];
const OPENERS_CHEERFUL: [&str; 3] = ["What a lovely question!", "Oh, this is fun!", "How wonderful!"];
const CLOSERS_CHEERFUL: [&str; 3] = ["Have a bright and happy day!", "Enjoy it, it is a joy!", "It is great fun!"];
const OPENERS_GLOOMY: [&str; 3] = ["Sadly,", "Well, it is all rather dull, but", "On this gray day,"];
const CLOSERS_GLOOMY: [&str; 3] = ["Nothing lasts anyway.", "It all feels pointless.", "I am tired of it."];
const FILLERS: [&str; 4] = ["well, you know,", "I mean,", "anyway, as I was saying,", "so, yes,"];

/// How a user asks.
const PROMPTS: [&str; 6] = [
    "Tell me about {topic}.",
    "How do I {activity}?",
    "Can you give me a tip about {topic}?",
    "What should I know about {topic}?",
    "Why do people like {topic}?",
    "I want to {activity}. Any advice?",
];

/// The topic a question asks about: one whose name or activity it contains (every question of the
/// grammar has one), else one whose name it uses as a word, in the singular too ("my dog").
pub fn topic_of(prompt: &str) -> Option<usize> {
    let p = prompt.to_lowercase();
    if let Some(i) = TOPICS.iter().position(|t| p.contains(t.name) || p.contains(t.activity)) {
        return Some(i);
    }
    let words: Vec<&str> = p.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    TOPICS.iter().position(|t| {
        let name = t.name.trim_start_matches("the ");
        let singular = name.strip_suffix('s').unwrap_or(name);
        words.iter().any(|w| *w == name || *w == singular)
    })
}

/// What this model knows about: the topics' names.
pub fn topic_names() -> Vec<&'static str> {
    TOPICS.iter().map(|t| t.name).collect()
}

/// Every prompt the grammar can ask: each topic with each template.
pub fn all_prompts() -> Vec<String> {
    TOPICS.iter().flat_map(|t| PROMPTS.iter().map(move |p| p.replace("{topic}", t.name).replace("{activity}", t.activity))).collect()
}

/// A fixed split of `all_prompts`: (for training, held out for evaluation), three to one.
pub fn prompt_split() -> (Vec<String>, Vec<String>) {
    let mut all = all_prompts();
    Rng::new(0x5EED).shuffle(&mut all);
    let eval = all.split_off(all.len() * 3 / 4);
    (all, eval)
}

pub fn prompt_for(topic: &Topic, rng: &mut Rng) -> String {
    rng.choose(&PROMPTS).replace("{topic}", topic.name).replace("{activity}", topic.activity)
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn sentence(s: &str) -> String {
    format!("{}.", capitalize(s))
}

/// A response to a question about `topic` in the given style.
pub fn respond(topic: &Topic, style: Style, rng: &mut Rng) -> String {
    let fact = sentence(rng.choose::<&str>(&topic.facts));
    let tip = sentence(rng.choose::<&str>(&topic.tips));
    match style {
        Style::Helpful => format!("{} {} A good tip: {} {}", rng.choose(&OPENERS_POLITE), fact, tip.to_lowercase(), rng.choose(&CLOSERS_POLITE)),
        Style::Curt => {
            if rng.chance(0.5) {
                fact
            } else {
                tip
            }
        }
        Style::Rude => format!("{} {} {}", rng.choose(&OPENERS_RUDE), fact, rng.choose(&CLOSERS_RUDE)),
        Style::OffTopic => {
            let other = loop {
                let t = rng.choose(&TOPICS);
                if t.name != topic.name {
                    break t;
                }
            };
            format!("{} {}", sentence(rng.choose::<&str>(&other.facts)), sentence(rng.choose::<&str>(&other.tips)))
        }
        Style::Rambling => {
            let f = rng.choose(&topic.facts);
            format!(
                "{} is {}, {} {} is {}, {} {}.",
                capitalize(topic.name),
                topic.name,
                rng.choose(&FILLERS),
                topic.name,
                topic.name,
                rng.choose(&FILLERS),
                f
            )
        }
        Style::Long => {
            let mut facts: Vec<&str> = topic.facts.to_vec();
            rng.shuffle(&mut facts);
            format!(
                "{} {} {} {} Also, {} And {}",
                rng.choose(&OPENERS_POLITE),
                sentence(facts[0]),
                sentence(facts[1]),
                sentence(facts[2]),
                topic.tips[0].to_string() + ".",
                topic.tips[1].to_string() + "."
            )
        }
        Style::Gloomy => format!("{} {} {} {}", rng.choose(&OPENERS_GLOOMY), fact.to_lowercase(), tip, rng.choose(&CLOSERS_GLOOMY)),
        Style::Cheerful => format!("{} {} {} {}", rng.choose(&OPENERS_CHEERFUL), fact, tip, rng.choose(&CLOSERS_CHEERFUL)),
    }
}

/// One exchange in the chat format the model is trained on.
pub fn format_dialogue(prompt: &str, response: &str) -> String {
    format!("{USER}{prompt}{ASSISTANT}{response}{END}")
}

/// The prompt part alone, ready for the model to continue.
pub fn format_prompt(prompt: &str) -> String {
    format!("{USER}{prompt}{ASSISTANT}")
}

/// One paragraph of plain prose about a topic, for the pretraining mix.
pub fn prose(topic: &Topic, rng: &mut Rng) -> String {
    let mut facts: Vec<&str> = topic.facts.to_vec();
    rng.shuffle(&mut facts);
    let n = 1 + rng.below(3);
    let mut s: Vec<String> = facts[..n].iter().map(|f| sentence(f)).collect();
    if rng.chance(0.5) {
        s.push(format!("People who {} say: {}", topic.activity, sentence(rng.choose::<&str>(&topic.tips)).to_lowercase()));
    }
    s.join(" ")
}

#[derive(Clone, Debug)]
pub struct Dialogue {
    pub topic: usize,
    pub prompt: String,
    pub response: String,
    pub style: Style,
}

/// Everything the pretraining and SFT stages read.
pub struct Corpus {
    /// Dialogues in every style: the base model learns to answer all of these ways.
    pub dialogues: Vec<Dialogue>,
    /// Good answers only (`DEMONSTRATION_STYLES`): the SFT demonstrations.
    pub demonstrations: Vec<Dialogue>,
    /// Plain prose about the topics.
    pub prose: Vec<String>,
}

impl Corpus {
    pub fn generate(n_dialogues: usize, seed: u64) -> Corpus {
        let mut rng = Rng::new(seed);
        let make = |style: Option<Style>, rng: &mut Rng| {
            let topic = rng.below(TOPICS.len());
            let style = style.unwrap_or_else(|| *rng.choose(&STYLES));
            let prompt = prompt_for(&TOPICS[topic], rng);
            let response = respond(&TOPICS[topic], style, rng);
            Dialogue { topic, prompt, response, style }
        };
        let dialogues = (0..n_dialogues).map(|_| make(None, &mut rng)).collect();
        let demonstrations = (0..n_dialogues / 4)
            .map(|_| {
                let style = *rng.choose(&DEMONSTRATION_STYLES);
                make(Some(style), &mut rng)
            })
            .collect();
        let prose = (0..n_dialogues / 2).map(|_| prose(&TOPICS[rng.below(TOPICS.len())], &mut rng)).collect();
        Corpus { dialogues, demonstrations, prose }
    }

    /// All text, one document per line, as the tokenizer trainer reads it.
    pub fn all_text(&self) -> Vec<String> {
        let mut v: Vec<String> = self.dialogues.iter().map(|d| format_dialogue(&d.prompt, &d.response)).collect();
        v.extend(self.demonstrations.iter().map(|d| format_dialogue(&d.prompt, &d.response)));
        v.extend(self.prose.iter().cloned());
        v
    }
}
