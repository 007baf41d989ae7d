from django.contrib import admin

from .models import AssetPreset, GeneratedImage, GenerationJob


@admin.register(AssetPreset)
class AssetPresetAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "default_size", "steps", "guidance_scale", "lora", "enabled", "position")
    list_editable = ("enabled", "position")
    prepopulated_fields = {"slug": ("name",)}


class GeneratedImageInline(admin.TabularInline):
    model = GeneratedImage
    extra = 0
    readonly_fields = ("index", "seed", "file", "width", "height", "created_at")
    can_delete = False


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ("created_at", "owner", "preset", "status", "images_done", "images_total", "attempts", "worker")
    list_filter = ("status", "preset")
    search_fields = ("prompt", "owner__username")
    readonly_fields = [f.name for f in GenerationJob._meta.fields]
    inlines = [GeneratedImageInline]
