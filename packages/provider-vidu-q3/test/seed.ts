// The request and response examples of the seed document (apixo's Vidu Q3 page), transcribed
// verbatim as JSON. Tests turn each request into provider calls and compare the bodies sent.

/** The request-body reference at the top of the page (a field overview, see the test). */
export const overviewRequest = {
  request_type: "async",
  callback_url: "https://...",
  provider: "auto",
  input: {
    mode: "text-to-video",
    prompt: "a cinematic shot of a futuristic city at sunrise",
    resolution: "720p",
    duration: 8,
    style: "general",
    aspect_ratio: "4:3",
    movement: "auto",
    sound: true,
    bgm: true,
    seed: 1234
  }
}

/** "文生视频 (text-to-video)". */
export const textToVideoRequest = {
  request_type: "async",
  input: {
    mode: "text-to-video",
    prompt: "a cinematic flyover of a futuristic city at sunrise",
    resolution: "720p",
    duration: 8,
    style: "general",
    aspect_ratio: "16:9",
    movement: "auto",
    sound: true,
    bgm: true
  }
}

/** "单图动画 (image-to-video, 1 张图)": one image, with a callback. */
export const oneImageCallbackRequest = {
  request_type: "callback",
  callback_url: "https://your-server.com/callback",
  input: {
    mode: "image-to-video",
    prompt: "make this image come alive with subtle motion",
    resolution: "1080p",
    duration: 4,
    image_urls: ["https://example.com/start.jpg"]
  }
}

/** "首尾帧生成 (image-to-video, 2 张图)": first and last frame. */
export const twoImagesRequest = {
  request_type: "async",
  input: {
    mode: "image-to-video",
    prompt: "transition from start to end smoothly",
    resolution: "720p",
    duration: 8,
    image_urls: ["https://example.com/start.jpg", "https://example.com/end.jpg"]
  }
}

/** Submit, success. */
export const submitSuccess = {
  code: 200,
  message: "success",
  data: {
    taskId: "task_12345678"
  }
}

/** Submit, failure (sent with HTTP 400 in the tests). */
export const submitFailure = {
  code: 400,
  message: "Insufficient credits",
  data: null
}

/** Status, success. */
export const statusSuccess = {
  code: 200,
  message: "success",
  data: {
    taskId: "task_12345678",
    state: "success",
    resultJson: '{"resultUrls":["https://r2.apixo.ai/video.mp4"]}',
    createTime: 1767965610929,
    completeTime: 1767965730929,
    costTime: 120000
  }
}

/** Status, failed. */
export const statusFailed = {
  code: 200,
  message: "success",
  data: {
    taskId: "task_12345678",
    state: "failed",
    failCode: "CONTENT_VIOLATION",
    failMsg: "Content does not meet safety guidelines"
  }
}
